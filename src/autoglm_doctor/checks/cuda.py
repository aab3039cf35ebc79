"""cuda.*: NVIDIA driver, torch's CUDA build, the toolkit and GPU memory (GPU-stack area)."""
