"""The allocator policy every litexp command sets: freed tensor memory is reused, not faulted in again."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from experiments.memory import keep_freed_memory


def on_glibc() -> bool:
    return sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")


@pytest.mark.parametrize("environ", [
    {"LITEXP_MALLOC": "default"},
    {"MALLOC_TRIM_THRESHOLD_": "131072"},
    {"MALLOC_MMAP_THRESHOLD_": "131072"},
    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
])
def test_a_users_own_allocator_setting_is_left_alone(environ):
    assert keep_freed_memory(environ) is False


MAPPED = """
import ctypes, sys, torch
from experiments.memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    assert keep_freed_memory({})
before = mallinfo2().hblkhd  # bytes held in mmap'ed chunks (given back to the system when freed)
buffer = torch.empty(4 * 1024 * 1024).fill_(1.0)  # 16 MiB, the size of a batch's activations
print(mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not on_glibc() or not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc >= 2.33 only")
def test_a_16_mib_tensor_comes_from_the_heap_not_from_its_own_mapping():
    def mapped(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", MAPPED, mode], capture_output=True, text=True, check=True,
                             timeout=120)
        return int(out.stdout.strip())

    # glibc's default maps it on its own and unmaps it when it is freed: the next one faults in 4,096 pages
    assert mapped("default") >= 16 * 1024 * 1024
    assert mapped("keep") == 0
