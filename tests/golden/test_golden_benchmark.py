"""Golden capture cost on ResNet-50: time against plain model.predict, and memory for 1 vs 32 images.

Run with ``pytest tests/golden/test_golden_benchmark.py -m slow --benchmark-enable``; the numbers
land in the benchmark's extra_info (no wall-clock asserts).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from golden import capture_golden, preprocess_steps
from resnet_probe import CAFFE, build_resnet50, image_set, resnet_manifest

from imagesets.images import load_rgb01

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

pytestmark = pytest.mark.slow


def test_capture_time_vs_predict(benchmark, tmp_path):
    model = build_resnet50()
    manifest = resnet_manifest(model, tmp_path)
    images = image_set(8, tmp_path / "images")
    x = np.stack([preprocess_steps(load_rgb01(p, 224, 224), CAFFE)[-1] for p in images])
    model.predict(x, batch_size=8, verbose=0)                       # warm-up
    start = time.perf_counter()
    model.predict(x, batch_size=8, verbose=0)
    predict_s = time.perf_counter() - start

    def capture():
        return capture_golden(model, manifest, images, tmp_path / "golden.h5", progress=False)

    capture()                                                         # warm-up (tracing)
    start = time.perf_counter()
    summary = benchmark.pedantic(capture, rounds=1, iterations=1)
    capture_s = time.perf_counter() - start
    benchmark.extra_info.update({
        "images": 8, "tensors": summary["tensors"], "predict_s": predict_s,
        "capture_s": capture_s, "capture_over_predict": capture_s / predict_s})
    print(f"\nResNet-50, 8 images, {summary['tensors']} tensors: golden capture {capture_s:.2f} s, "
          f"model.predict {predict_s:.2f} s, ratio {capture_s / predict_s:.1f}")
    assert summary["statuses"] == {"ok": summary["tensors"] * 8}


def _probe(n, work):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, str(HERE / "resnet_probe.py"), str(n), str(work)],
                         capture_output=True, text=True, env=env, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peak_memory_1_vs_32_images(benchmark, tmp_path):
    results = {}

    def run():
        results[1] = _probe(1, tmp_path)
        results[32] = _probe(32, tmp_path)

    benchmark.pedantic(run, rounds=1, iterations=1)
    one, many = results[1], results[32]
    benchmark.extra_info.update({
        "peak_rss_mb_1": one["peak_rss_kb"] / 1024, "peak_rss_mb_32": many["peak_rss_kb"] / 1024,
        "tracemalloc_peak_mb_1": one["tracemalloc_peak_bytes"] / 2**20,
        "tracemalloc_peak_mb_32": many["tracemalloc_peak_bytes"] / 2**20,
        "capture_s_1": one["seconds"], "capture_s_32": many["seconds"]})
    print(f"\npeak RSS: 1 image {one['peak_rss_kb'] / 1024:.0f} MB, 32 images "
          f"{many['peak_rss_kb'] / 1024:.0f} MB; tracemalloc peak "
          f"{one['tracemalloc_peak_bytes'] / 2**20:.0f} MB vs "
          f"{many['tracemalloc_peak_bytes'] / 2**20:.0f} MB")
    # streaming: Python-side peak does not grow with the number of images
    assert many["tracemalloc_peak_bytes"] < 1.5 * one["tracemalloc_peak_bytes"] + 2**26
