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
128 KB was mapped and faulted in afresh (``golden.heap`` now sets the heap in every measuring
process; per image, a worker costs what this process does).  Then the kept images: their
records (MobileNet: 80 MB an image) came back through Dask's sockets, which cost more CPU on
both ends than measuring them (1.7 s of 6.6 s for 32 images); the workers now leave them in a
scratch folder of the cache and return the file (read back as views of the mapped file), and
the worst images' records are computed again without measuring them again.  The shards shrink
towards the end (16 images at most, single images last), so no worker waits long for the last
one before the worst images are chosen; Dask's sampling profiler is off on the workers; and
glibc keeps freed memory (``golden.heap``).  What is left: two processes measuring at once each
take ~7 % longer an image than one alone (the cores share a cache and memory bandwidth), a Dask
worker ~5 % more than a plain process, and the worst images' records are computed twice.

Measured (32 MobileNet images, 3 rounds per run), throughput of 2 workers over 1: before
0.19-0.55 under a load average of 7-14, 1.23-1.24 on a quiet machine; kept records through
the sockets 1.25-1.26 versus dropped (``keep=0``) 1.63-1.64, the upper bound; after, on a quiet
machine: 1.58-1.69 (CPU of 2 workers 1.06-1.13 × that of 1).  Memory and disk, 256 over 16
images: peak RSS × 1.00, cache × 1.14.
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
            "ratio_before": "1.23-1.24 (quiet machine)", "cpu_ratio": statistics.median(cpu),
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
