#!/usr/bin/env bash
# sbatch --nodes=16 docs/fleet/slurm.sh     (one snapshot per node, then the fleet view)
#SBATCH --job-name=autoglm-doctor
#SBATCH --ntasks-per-node=1
#SBATCH --time=00:10:00
#SBATCH --output=autoglm-doctor-%j.log
set -euo pipefail
export OUT="${OUT:-$PWD/autoglm-fleet-${SLURM_JOB_ID:-local}}"
export AUTOGLM_CONFIG="${AUTOGLM_CONFIG:-/etc/autoglm/autoglm.yaml}"
mkdir -p "$OUT"
srun --ntasks-per-node=1 bash -c 'autoglm-doctor snapshot --config "$AUTOGLM_CONFIG" -o "$OUT/$(hostname -s).json"'
# exit 0: every node agrees · 1: drift or a failing node · 2: no snapshot readable
autoglm-doctor fleet "$OUT"
