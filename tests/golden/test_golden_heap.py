"""The heap setting every measuring process makes (golden.heap)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# glibc marks a block it mapped on its own with bit 2 of the size word just before it
PROBE = """
import ctypes, sys
from golden.heap import keep_freed_memory
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def mapped(size=8 * 2 ** 20):
    block = libc.malloc(size)
    flag = bool(ctypes.c_size_t.from_address(block - ctypes.sizeof(ctypes.c_size_t)).value & 2)
    libc.free(block)
    return flag

print(mapped(), keep_freed_memory(), mapped())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_come_from_the_heap_once_set_even_in_a_dask_worker():
    env = dict(os.environ, PYTHONPATH=str(ROOT), MALLOC_TRIM_THRESHOLD_="65536")   # as Dask sets
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    assert out == ["True", "True", "False"]
