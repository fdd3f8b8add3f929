"""What the benchmarks under tests/ share: timing a target side by side with its baseline.

The machine is shared and timings are noisy, so a benchmark never compares against a number
measured at another time: each round runs the baseline (untimed by pytest-benchmark: in its setup,
or its teardown every other round) next to the target, and the ratio is the median of the
per-round ratios; the ratio of the CPU time both used (``cpu_ratio``) is recorded too, as it
depends less on what else the machine runs.  With ``--benchmark-disable`` (the default) pedantic
runs one round, so the ratio is still recorded.
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

    def run(self, benchmark, target, baseline, rounds: int = 3):
        """``target()`` timed by pytest-benchmark, the baseline right before it in even rounds and
        right after it in odd ones; returns the target's last result.

        Alternating keeps either side from always running in the state the other leaves behind:
        on a virtual machine that hands freed memory back to its host (free page reporting),
        memory freed a moment ago is cheap to touch again and memory freed seconds ago costs
        several times more, so a side's time depends on what ran just before it."""
        def measure_baseline():
            start, cpu = time.perf_counter(), time.process_time()
            baseline()
            self.baseline_s.append(time.perf_counter() - start)
            self.baseline_cpu_s.append(time.process_time() - cpu)

        def setup():
            if len(self.target_s) % 2 == 0:
                measure_baseline()

        def teardown():
            if len(self.target_s) % 2 == 0:       # an odd round has just been timed
                measure_baseline()

        def timed():
            start, cpu = time.perf_counter(), time.process_time()
            result = target()
            self.target_s.append(time.perf_counter() - start)
            self.target_cpu_s.append(time.process_time() - cpu)
            return result

        return benchmark.pedantic(timed, setup=setup, teardown=teardown, rounds=rounds)

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
                "round_target_s": self.target_s, "round_baseline_s": self.baseline_s,
                **measures}
        benchmark.extra_info.update(info)
        return info


@pytest.fixture
def side_by_side():
    return SideBySide()
