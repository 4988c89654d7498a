"""The C allocator's policy for a training process: freed tensor memory stays with the process.

PyTorch's CPU tensors come from ``malloc``. glibc serves a large request with its own ``mmap`` and
gives the memory of a large free back to the system (``munmap``, or a trim of the heap's top), so a
training step that frees its activations and allocates them again can fault in every page anew.
Which of a step's buffers take that path depends on glibc's adaptive thresholds and on what else the
process allocated: on the book LeNet (Fashion-MNIST, batch 256, one thread) some processes took
0.4 to 0.9 million page faults per epoch, about 2 to 5 ms of a 23 ms step, and others a few thousand,
with the same code and seed (``python -m experiments.bench_lenet`` prints the faults per epoch).

:func:`keep_freed_memory` fixes both thresholds, as glibc's ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` would: requests up to 32 MiB come from the heap, and up to 256 MiB of free
heap stay with the process. Every litexp command calls it first. The cost is memory the process keeps
after a peak (at most the trim threshold beyond what it uses). Not changed: a process whose environment
sets either variable or a ``glibc.malloc`` tunable (glibc already follows it), one with
``LITEXP_MALLOC=default``, and any C library but glibc.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest: 4 * 1024 * 1024 * sizeof(long) on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory(environ: os._Environ | dict = os.environ) -> bool:
    """Set glibc's mmap and trim thresholds (see the module); True when they were set."""
    if environ.get("LITEXP_MALLOC") == "default" or any(name in environ for name in USER_SETTINGS):
        return False
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", "") or not sys.platform.startswith("linux"):
        return False
    try:
        process = ctypes.CDLL(None)  # the C library this process runs on
        mallopt = process.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(process, "gnu_get_libc_version"):  # glibc only (musl's mallopt takes no such parameters)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
