"""What the benchmarks under tests/ share: timing a target side by side with its baseline.

The machine is shared and timings are noisy, so a benchmark never compares against a number
measured at another time: each round runs the baseline (in pytest-benchmark's untimed setup) and
then the target, and the ratio is the median of the per-round ratios; the ratio of the CPU time
both used (``cpu_ratio``) is recorded too, as it depends less on what else the machine runs.  With
``--benchmark-disable`` (the default) pedantic runs one round, so the ratio is still recorded.
"""
import statistics
import time
from dataclasses import dataclass, field

import pytest


@dataclass
class SideBySide:
    baseline_s: list = field(default_factory=list)
    target_s: list = field(default_factory=list)
    baseline_cpu_s: list = field(default_factory=list)      # CPU time of this process (all
    target_cpu_s: list = field(default_factory=list)        # threads): what the work costs,
                                                             # whatever share of the cores it got

    def run(self, benchmark, target, baseline, rounds: int = 3, untimed=None):
        """``target()`` timed by pytest-benchmark, each round right after ``baseline()`` (and
        ``untimed()`` before both, if given); returns the target's last result."""
        def setup():
            if untimed is not None:
                untimed()
            start, cpu = time.perf_counter(), time.process_time()
            baseline()
            self.baseline_s.append(time.perf_counter() - start)
            self.baseline_cpu_s.append(time.process_time() - cpu)

        def timed():
            start, cpu = time.perf_counter(), time.process_time()
            result = target()
            self.target_s.append(time.perf_counter() - start)
            self.target_cpu_s.append(time.process_time() - cpu)
            return result

        return benchmark.pedantic(timed, setup=setup, rounds=rounds)

    @property
    def ratio(self) -> float:
        return statistics.median(t / b for t, b in zip(self.target_s, self.baseline_s))

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(t / b for t, b in zip(self.target_cpu_s, self.baseline_cpu_s))

    def record(self, benchmark, goal: float, before: str, **measures) -> dict:
        """Put the ratio, the median times, the goal and the ratio measured before this code into
        the benchmark's ``extra_info``; returns them."""
        info = {"ratio": self.ratio, "goal_ratio": goal, "ratio_before": before,
                "cpu_ratio": self.cpu_ratio, "target_s": statistics.median(self.target_s),
                "baseline_s": statistics.median(self.baseline_s), "rounds": len(self.target_s),
                **measures}
        benchmark.extra_info.update(info)
        return info


@pytest.fixture
def side_by_side():
    return SideBySide()
