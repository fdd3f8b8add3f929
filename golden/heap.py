"""glibc's malloc told to keep what it frees, for processes that allocate the same large arrays
image after image.

Keras returns every output of the multi-output sub-model in fresh buffers (40 MB an image on
ResNet-50), and the error statistics and the reference device make their own.  By default glibc
maps the larger of them afresh and hands freed memory back to the system, so every image faults
all those pages in (and zeroes them) again: ResNet-50's sub-model took 1.6 × the plain model's
pass on one image, and 1.1 × once the pages are kept.  The heap stays as large as one image's
peak; it does not grow with the number of images.
"""
import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2 ** 20       # glibc's largest: bigger blocks are still mapped
TRIM_THRESHOLD = 2 ** 30            # free memory kept at the top of a heap before it is returned


def keep_freed_memory() -> bool:
    """Tune this process's malloc (glibc only; elsewhere nothing changes); True when it did."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt         # this process's own C library
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
