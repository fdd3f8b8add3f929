"""The streaming measurement at scale: 2 workers against 1, and memory and disk for 256 vs 16 images.

Slow.  Run with ``pytest tests/validation/test_validation_stream_benchmark.py -m slow
--benchmark-enable --benchmark-json=bench.json``; the numbers are in ``extra_info``.  Both use
procedural images drawn like the embedded default model's training set (``training.shapes_net``),
measured by the reference device.

* Scaling (MobileNet, seeded weights; ``stream_probe.py scaling``): each round measures 32 images
  in one process (``workers=0``), then on a local Dask cluster of 2 worker processes started (and
  warmed: Keras, the device and the manifest loaded) before the rounds, so the ratio is the
  steady-state throughput a long run gets; the cluster's start is recorded apart, and so are the
  CPU seconds both used (``cpu_ratio``: what distributing costs, whatever share of the cores the
  machine gives).  The process
  runs with the workers' environment (one thread each): TensorFlow sums in another order on more
  threads, so only then does ``workers=0`` give the workers' numbers, and only then is "1 worker"
  one core's throughput.  Goal: 2 workers ≥ 1.6 × the
  throughput of 1.  The default model is too small to show it: it measures an image in ~4 ms, less
  than a Dask task's round trip.
* Memory and disk: the suite's pipeline measures 16 and then 256 images, each in a process of its
  own and a fresh cache.  Goal: peak RSS and cache size for 256 images ≤ 1.2 × those for 16.

Where a measured image's time went (ResNet-50, one thread, cProfile of ``measure_shard``),
before: the reference device 0.18 s, the error statistics of its 93 tensors 0.18 s (float64
copies, a boolean-mask copy of every golden tensor, |diff| and the golden's |x| taken twice),
Keras 0.11 s (``predict_on_batch`` of the 90-output sub-model 0.086 s), loading the image
0.01 s.  After: the statistics make each pass once (same sums on the same arrays, bit-identical)
and the device runs on one BLAS thread (tests/reference_device/test_refdev_benchmark.py).  On a
cluster the images kept as the worst were measured again in
one task, so one worker did that tail alone; they are now a task each.  And a Dask worker
measured an image ~1.7 × slower than the controller did: Dask starts its workers with
``MALLOC_TRIM_THRESHOLD_``, which turns off glibc's adaptive mmap threshold, so every array over
128 KB was mapped and faulted in afresh (``validation.stream.local_cluster`` starts them without
it; per image, a worker now costs what this process does).  What distributing still costs: the
kept images' activations travel from the workers (8 × 80 MB for MobileNet) and the worst are
measured twice.

Measured (32 MobileNet images, 2 rounds per run; the machine's load average was 7-14, so two
workers rarely got two cores): throughput of 2 workers over 1, before 0.19, 0.55, 0.25, 0.26 →
after 0.89, 0.78, 0.59, 0.75, 0.57, with 2 workers using 1.47-1.88 × the CPU time of 1.  Memory
and disk, 256 over 16 images: peak RSS × 1.00, cache × 1.14, before and after.
"""
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def shapes(folder: Path, count: int) -> Path:
    """``count`` labelled images of the default model's 8 classes, drawn with a fixed seed."""
    from training.shapes_net import write_samples

    write_samples(folder, per_class=count // 8)
    return folder / "images"


def _probe(*args) -> dict:
    from validation.stream import WORKER_ENV

    env = dict(os.environ, PYTHONPATH=str(ROOT), **WORKER_ENV)
    out = subprocess.run([sys.executable, str(HERE / "stream_probe.py"), *map(str, args)],
                         capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="stream")
def test_two_workers_vs_one(benchmark, suite_cache, tmp_path):
    images = shapes(tmp_path, 32)
    result = benchmark.pedantic(lambda: _probe("scaling", suite_cache, images, 3), rounds=1,
                                iterations=1)
    ratios = [one / two for one, two in zip(result["one_worker_s"], result["two_workers_s"])]
    cpu = [two / one for one, two in zip(result["one_worker_cpu_s"], result["two_workers_cpu_s"])]
    info = {"throughput_ratio": statistics.median(ratios), "goal_ratio": ">= 1.6",
            "ratio_before": "0.19-0.55", "cpu_ratio": statistics.median(cpu),
            "one_worker_s": statistics.median(result["one_worker_s"]),
            "two_workers_s": statistics.median(result["two_workers_s"]),
            "cluster_start_s": result["cluster_start_s"], "images": result["images"],
            "rounds": len(ratios), "model": "mobilenet"}
    benchmark.extra_info.update(info)
    print(f"\n{info['images']} images: 1 worker {info['one_worker_s']:.1f} s, 2 workers "
          f"{info['two_workers_s']:.1f} s: throughput × {info['throughput_ratio']:.2f}, CPU "
          f"× {info['cpu_ratio']:.2f} (cluster start and warm-up {info['cluster_start_s']:.1f} s)")
    assert result["workers"] == [2]
    assert result["identical"], "2 workers measured other numbers than 1"


@pytest.mark.benchmark(group="stream")
def test_memory_and_cache_256_vs_16_images(benchmark, tmp_path):
    sets = {n: shapes(tmp_path / f"set-{n}", n) for n in (16, 256)}
    results = {}

    def run():
        for n, folder in sets.items():
            results[n] = _probe("memory", tmp_path / f"cache-{n}", folder)

    benchmark.pedantic(run, rounds=1, iterations=1)
    few, many = results[16], results[256]
    info = {"peak_rss_mb_16": few["peak_rss_kb"] / 1024, "peak_rss_mb_256": many["peak_rss_kb"] / 1024,
            "peak_rss_ratio": many["peak_rss_kb"] / few["peak_rss_kb"],
            "cache_mb_16": few["cache_bytes"] / 2**20, "cache_mb_256": many["cache_bytes"] / 2**20,
            "cache_ratio": many["cache_bytes"] / few["cache_bytes"],
            "measurement_mb_16": few["measurement_bytes"] / 2**20,
            "measurement_mb_256": many["measurement_bytes"] / 2**20,
            "measure_s_16": few["seconds"], "measure_s_256": many["seconds"],
            "kept_16": few["kept"], "kept_256": many["kept"], "goal_ratio": "<= 1.2"}
    benchmark.extra_info.update(info)
    print(f"\npeak RSS {info['peak_rss_mb_16']:.0f} MB (16 images) vs "
          f"{info['peak_rss_mb_256']:.0f} MB (256): × {info['peak_rss_ratio']:.2f}; cache "
          f"{info['cache_mb_16']:.1f} MB vs {info['cache_mb_256']:.1f} MB: "
          f"× {info['cache_ratio']:.2f}")
    for n, result in results.items():
        assert result["measured"] == result["images"] == n
        assert 4 <= result["kept"] <= 8           # the first 4 images, then up to 4 worst
