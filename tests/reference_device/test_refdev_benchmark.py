"""Forward-pass speed of the reference device relative to TensorFlow's own ``predict``.

Slow.  Both run on the same input in the same process; the ratio (device / predict, best of a
few runs each) goes into pytest-benchmark's ``extra_info``.  No wall-clock limit is asserted: the
target is a ratio of at most 3.
"""
import time
from pathlib import Path

import numpy as np
import pytest

from device_pull.reference_device import ReferenceDevice
from refdev_support import convert
from core.manifest import load_manifest

pytestmark = pytest.mark.slow

REPEATS = 3


def best_time(fn, repeats=REPEATS):
    fn()                                   # warm up (graph tracing, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@pytest.mark.parametrize("spec", ["resnet50", "mobilenet"])
def test_forward_vs_tensorflow_predict(spec, benchmark, tmp_path_factory):
    import os

    from core.zoo import load_model

    base = Path(os.environ.get("REFDEV_NETWORK_DIR") or tmp_path_factory.getbasetemp()) / f"net-{spec}"
    base.mkdir(parents=True, exist_ok=True)
    manifest_path = convert(spec, base)
    manifest = load_manifest(manifest_path)
    w, h = manifest.input.width, manifest.input.height
    device = ReferenceDevice(next((base / "S").glob("*Builder.swift")), manifest_path.parent)
    from core.kerasenv import keras

    keras.backend.clear_session()
    model = load_model(spec, "random", 0)

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    x = rgba[None, :, :, :3].astype(np.float32)           # same pixels; preprocessing is cheap

    t_tf = best_time(lambda: model.predict(x, verbose=0))
    t_dev = best_time(lambda: device.forward(rgba))
    ratio = t_dev / t_tf
    benchmark.extra_info.update({"model": spec, "tensorflow_predict_s": t_tf,
                                 "reference_device_s": t_dev, "ratio": ratio,
                                 "target_ratio": 3.0})
    benchmark(device.forward, rgba)
    print(f"\n{spec}: reference device {t_dev:.3f} s, TensorFlow predict {t_tf:.3f} s, "
          f"ratio {ratio:.2f}")
