"""The heap setting every measuring process makes (golden.heap)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# what both probes start with: the process's own malloc and free, and the setting
LIBC = """
import ctypes, resource, sys, threading
from golden.heap import keep_freed_memory
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
"""

# glibc marks a block it mapped on its own with bit 2 of the size word just before it
PROBE = LIBC + """
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


# a thread's arena grows in 64 MB heaps; an image's arrays spanning two of them, freed, then again
BLOCK, COUNT = 4 * 2 ** 20, 30
THREAD_PROBE = LIBC + f"""
BLOCK, COUNT = {BLOCK}, {COUNT}

def page_faults_of_one_image():
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    blocks = [libc.malloc(BLOCK) for _ in range(COUNT)]
    for block in blocks:
        ctypes.memset(block, 1, BLOCK)
    for block in blocks:
        libc.free(block)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

def second_image():
    page_faults_of_one_image()
    print(page_faults_of_one_image())

if sys.argv[1] == "set":
    keep_freed_memory()
thread = threading.Thread(target=second_image)
thread.start()
thread.join()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_threads_second_image_finds_its_pages_kept_as_a_dask_workers_task_does():
    env = dict(os.environ, PYTHONPATH=str(ROOT), MALLOC_TRIM_THRESHOLD_="65536")   # as Dask sets
    faults = {how: int(subprocess.run([sys.executable, "-c", THREAD_PROBE, how],
                                      capture_output=True, text=True, env=env,
                                      check=True).stdout)
              for how in ("unset", "set")}
    pages = COUNT * BLOCK // os.sysconf("SC_PAGE_SIZE")
    assert faults["unset"] >= pages * 0.9           # the probe does fault every page afresh
    assert faults["set"] <= pages * 0.05
