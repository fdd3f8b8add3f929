"""Golden capture on ResNet-50 against plain ``model.predict``, and its memory for 1 vs 32 images.

Run with ``pytest tests/golden/test_golden_benchmark.py -m slow --benchmark-enable
--benchmark-json=bench.json``; ratios land in ``extra_info`` (no wall-clock asserts).  The
baseline is ``model.predict`` on the same 8 preprocessed images in one batch; the targets are the
path the suite takes inside ``validation.stream.measure_shard`` (one :class:`GoldenRunner`, then
``records(image)`` image by image) and ``capture_golden`` writing a store.  Goal ≤ 1.5.

Where the time went (one thread, interleaved timings): a record costs Keras's pass of the
multi-output sub-model plus ~10% (loading and resizing the image, preprocessing, NaN checks).
The sub-model itself takes 1.85 × the plain model's pass on the converted ResNet-50 (90 outputs)
and 2.7 × on MobileNet (57): every output is materialised in the plain layout instead of staying
inside oneDNN's fused, blocked kernels.  ``predict_on_batch`` adds nothing measurable on top (a
traced ``tf.function`` of the same graph took the same time, with the same bits, so it was not
kept).  Batching images inside a shard was not used either: TensorFlow's kernels give other bits
for a batch of 8 than for one image (282 of 564 tensors differed), so per-image results would
depend on the shard.  ``capture_golden`` also writes every tensor of every image: 40 MB per
ResNet-50 image, 0.5 s of HDF5 writes for the 8 images (the disk's ~0.7 GB/s) against 0.5 s of
Keras, so it stays above 1.5 × ``predict`` here.

Ratios measured (median of 3 rounds per run, 2-core machine shared with other work), before →
after this branch: the runner image by image 1.55, 1.77, 1.14 → 1.30, 1.49, 1.38, 1.46 (no
change beyond noise: nothing in the golden path got faster); ``capture_golden`` 2.33, 2.33, 2.21
→ 2.02, 1.50, 2.30.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden import GoldenRunner, capture_golden, preprocess_steps
from core.manifest import load_manifest
from resnet_probe import CAFFE, build_resnet50, image_set, resnet_manifest

from imagesets.images import load_rgb01

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
IMAGES = 8

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    work = tmp_path_factory.mktemp("golden-bench")
    model = build_resnet50()
    manifest = load_manifest(resnet_manifest(model, work))
    images = image_set(IMAGES, work / "images")
    x = np.stack([preprocess_steps(load_rgb01(p, 224, 224), CAFFE)[-1] for p in images])
    model.predict(x, batch_size=IMAGES, verbose=0)                     # warm-up (tracing)
    return model, manifest, images, x, work


def _predict(model, x):
    return lambda: model.predict(x, batch_size=IMAGES, verbose=0)


@pytest.mark.benchmark(group="golden")
def test_golden_runner_image_by_image_vs_predict(benchmark, side_by_side, resnet):
    model, manifest, images, x, _ = resnet
    runner = GoldenRunner(model, manifest)
    runner.records(images[0])                                          # warm-up (tracing)
    records = side_by_side.run(benchmark, lambda: [runner.records(p) for p in images],
                               _predict(model, x))
    info = side_by_side.record(benchmark, goal=1.5, before="1.14-1.77", images=IMAGES,
                               tensors=len(manifest.tensors))
    print(f"\nResNet-50, {IMAGES} images: GoldenRunner image by image {info['target_s']:.2f} s, "
          f"model.predict {info['baseline_s']:.2f} s, ratio {info['ratio']:.2f}")
    probabilities = model.predict(x, batch_size=IMAGES, verbose=0)
    for image, record, expected in zip(images, records, probabilities):
        assert {status for _, status, _ in record.values()} == {"ok"}, image.name
        np.testing.assert_allclose(record["predictions"][0].reshape(-1), expected, rtol=1e-4,
                                   atol=1e-7, err_msg=image.name)


@pytest.mark.benchmark(group="golden")
def test_capture_golden_vs_predict(benchmark, side_by_side, resnet):
    model, manifest, images, x, work = resnet

    stores = []

    def capture():
        """A new store each round, as the suite writes one (replacing a 320 MB store would add
        deleting it)."""
        stores.append(work / f"golden-{len(stores)}.h5")
        return capture_golden(model, manifest, images, stores[-1], progress=False)

    def clean_up():
        for old in stores:
            old.unlink(missing_ok=True)

    capture()                                                          # warm-up (tracing)
    summary = side_by_side.run(benchmark, capture, _predict(model, x), untimed=clean_up)
    info = side_by_side.record(benchmark, goal=1.5, before="2.21-2.33", images=IMAGES,
                               tensors=summary["tensors"])
    print(f"\nResNet-50, {IMAGES} images, {summary['tensors']} tensors: golden capture "
          f"{info['target_s']:.2f} s, model.predict {info['baseline_s']:.2f} s, "
          f"ratio {info['ratio']:.2f}")
    assert summary["statuses"] == {"ok": summary["tensors"] * IMAGES}
    clean_up()


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
