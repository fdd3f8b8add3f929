"""Fixtures for the reference device tests: the hand-written fork-style builder, its weights
(written here from an independent Keras model with seeded random weights) and test images."""
import types

import numpy as np
import pytest

from refdev_support import (TINY_BUILDER, TINY_REFERENCE, keras_activations, save_png,
                            tiny_keras_model, write_tiny_weights)


@pytest.fixture(scope="session")
def tiny_fork(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_fork")
    model = tiny_keras_model(seed=0)
    write_tiny_weights(model, root / "params")
    rng = np.random.default_rng(1)
    images = root / "images"
    images.mkdir()
    # A smooth image plus noise: natural-ish statistics, exact 32x32 (no resize on the device).
    yy, xx = np.mgrid[0:32, 0:32]
    base = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=2)
    rgb8 = np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)
    save_png(images / "sample.png", rgb8)
    save_png(images / "other.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    names = sorted(set(TINY_REFERENCE.values()))
    refs = {}
    for img in ("sample", "other"):
        from PIL import Image

        arr = np.asarray(Image.open(images / f"{img}.png").convert("RGB"), np.float32) / 255.0
        refs[img] = keras_activations(model, arr, names)
    return types.SimpleNamespace(builder=TINY_BUILDER, params=root / "params", images=images,
                                 model=model, refs=refs, root=root)
