"""The libraries packages.abi proves compiled extensions against, as patterns over their sonames.

A module of its own because the probe is given :data:`LINKS` as it starts (``--links``), before
anything else of packages.abi is needed: importing :mod:`autoglm_doctor.probe.abi` there cost 8 ms
of the time before the probe could start.
"""

TORCH_LIBRARY = r"^lib(?:c10|torch|shm)(?:_[a-z0-9_]+)?\.so$"
"""Libraries torch ships in ``torch/lib`` (``libc10.so``, ``libtorch_cuda.so``, ``libtorch_python.so``)."""
CUDA_LIBRARY = (
    r"^lib(?:cudart|cublas|cublasLt|cudnn[a-z_]*|nccl|nvrtc|cusparse|cusparseLt|cufft|curand|cusolver|nvJitLink"
    r"|nvToolsExt|cupti|cufile|nvshmem_host|nvjpeg)\.so(?:\.\d+)*$"
)
"""The CUDA runtime libraries torch's CUDA builds load from the ``nvidia-*`` wheels."""
LINKS = f"(?:{TORCH_LIBRARY})|(?:{CUDA_LIBRARY})"
"""A shared object that needs a library matching this is read in full; the probe sends back only those."""
