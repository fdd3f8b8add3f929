"""What the benchmark probes (scripts run in a process of their own) read about themselves."""
import resource
from pathlib import Path


def peak_rss_kb() -> int:
    """This process's peak resident set since it started, in KB: VmHWM, whose count starts anew
    at exec (ru_maxrss also keeps the peak of the process it was forked from: pytest's, which
    after the VGG16 benchmark is 7 GB)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
