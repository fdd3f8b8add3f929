"""glibc's malloc told to keep what it frees, for processes that allocate the same large arrays
image after image.

Keras returns every output of the multi-output sub-model in fresh buffers (40 MB an image on
ResNet-50), and the error statistics and the reference device make their own.  By default glibc
maps the larger of them afresh and hands freed memory back to the system, so every image faults
all those pages in (and zeroes them) again: ResNet-50's sub-model took 1.6 × the plain model's
pass on one image, and 1.1 × once the pages are kept.  The heap stays as large as one image's
peak; it does not grow with the number of images.

A Dask worker measures in a thread, and a thread allocates from an arena of 64 MB heaps that glibc
unmaps as soon as one is wholly free, whatever the trim threshold, unless the top pad is as large
as a heap: a worker measuring MobileNet took 850-1,900 page faults an image with only the
thresholds set, 290-300 with the pad too (570-700 in this process's main thread).
"""
import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 * 2 ** 20       # glibc's largest: bigger blocks are still mapped
TRIM_THRESHOLD = 2 ** 30            # free memory kept at the top of a heap before it is returned
TOP_PAD = 2 * MMAP_THRESHOLD        # a thread arena's heap (64 MB): none handed back while free


def keep_freed_memory() -> bool:
    """Tune this process's malloc (glibc only; elsewhere nothing changes); True when it did."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt         # this process's own C library
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_TOP_PAD, TOP_PAD))
