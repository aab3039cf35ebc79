"""The console entry point: a plain ``check`` runs at once; everything else goes to the typer CLI.

Importing typer and click costs ~85 ms, about a quarter of a whole ``check`` run. A valid
``check`` command line is read by :func:`autoglm_doctor.check_command.parse_plain` and run
without them; help, errors and the other commands are typer's (:mod:`autoglm_doctor.cli`), so
they look and behave the same whichever way a run starts.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """``autoglm-doctor [ARGS]``; ``argv=None`` means "run as the program" (read ``sys.argv``)."""
    from autoglm_doctor.exits import run_guarded

    # Guarded from the first import on, so that the collector's pause covers every import.
    return run_guarded(lambda: _run(argv), program=argv is None)


def _run(argv: list[str] | None) -> int:
    from autoglm_doctor.check_command import parse_plain, run

    args = parse_plain(sys.argv[1:] if argv is None else argv)
    if args is None:
        from autoglm_doctor.cli import main as cli_main

        return cli_main(argv)  # guards itself too, with typer's errors mapped
    return run(args)
