"""The eight networks, converted with seeded random weights, on the reference device vs Keras.

Slow: each test converts a zoo model with ``python -m core`` (builder + weights + manifest), runs
the generated builder on the reference device and compares every dumped tensor that the manifest
maps to a Keras tensor, and the top-5 of classifiers.
"""
import os
from pathlib import Path

import numpy as np
import pytest

from device_pull.reference_device import ReferenceDevice
from refdev_support import convert
from core.manifest import load_manifest
from core.preprocessing import apply_steps
from golden import preprocess_steps

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "core" / "data" / "images"
NETWORKS = ["vgg16", "resnet50", "inception_v3", "inception_resnet_v2", "mobilenet", "xception",
            "tiny_yolo", "yolo"]
# Float16 images drift from float32 Keras as depth grows (about 5e-4 relative per layer,
# amplified by random weights); a conversion bug gives errors of order 1.
MAX_REL = 0.15
MEAN_REL = 0.1


def network_image(width, height, folder: Path) -> Path:
    """A photo pre-sized to the network input (so the device's Resize is the identity)."""
    from PIL import Image

    src = IMAGES / "dog.jpg"
    path = folder / f"dog-{width}x{height}.png"
    if not path.exists():
        Image.open(src).convert("RGB").resize((width, height), Image.LANCZOS).save(path)
    return path


def keras_references(spec, manifest, rgb01):
    from core.kerasenv import keras
    from core.zoo import load_model

    keras.backend.clear_session()   # auto-generated layer names as in the converter's process
    model = load_model(spec, "random", 0)
    keras_tensors = [t for t in manifest.tensors
                     if t.reference and t.reference.kind == "keras"]
    layers = sorted({t.reference.layer for t in keras_tensors})
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in layers])
    x = apply_steps(rgb01, manifest.preprocessing.steps)
    values = probe.predict(x[None], verbose=0)
    if len(layers) == 1:
        values = [values]
    return dict(zip(layers, (v[0] for v in values)))


def expected(t, refs, rgb01, steps):
    r = t.reference
    if r.kind == "image":
        return rgb01
    if r.kind == "preprocessing":
        return preprocess_steps(rgb01, steps)[r.step]
    if r.kind == "keras":
        v = refs[r.layer]
        if r.affine:
            v = r.affine[0] * v + r.affine[1]
        return v
    return None


@pytest.mark.parametrize("spec", NETWORKS)
def test_network_matches_keras(spec, tmp_path_factory):
    base = Path(os.environ.get("REFDEV_NETWORK_DIR") or tmp_path_factory.getbasetemp()) / f"net-{spec}"
    base.mkdir(parents=True, exist_ok=True)
    manifest_path = convert(spec, base)
    manifest = load_manifest(manifest_path)
    builder = next((base / "S").glob("*Builder.swift"))
    width, height = manifest.input.width, manifest.input.height
    image = network_image(width, height, base)
    from PIL import Image

    rgba = np.asarray(Image.open(image).convert("RGBA"))
    rgb01 = rgba[:, :, :3].astype(np.float32) / 255.0

    device = ReferenceDevice(builder, manifest_path.parent)
    result = device.forward(rgba, dump="all")
    dumps = result["dumps"]
    refs = keras_references(spec, manifest, rgb01)
    steps = manifest.preprocessing.steps

    # Files a phone does not write: the fork's DocumentDirectoryDumper never dumps the inputs of a
    # Concat that is itself an input of a Collect (Inception-ResNet's mixed_5b, mixed_6a, ...).
    by_id = {t.short_id: t for t in device.tensors}
    quirk = {device.file_name(i) for t in device.tensors if t.type_name == "Concat"
             and any(n.type_name == "Collect" for n in t.next) for i in t.previous}
    wanted = {t.dump_file for t in manifest.tensors if t.dump_file}
    assert not (wanted - set(dumps) - quirk), sorted(wanted - set(dumps) - quirk)[:10]
    assert by_id[manifest.output.tensor] is device.model.output

    compared, failures = 0, []
    for t in manifest.tensors:
        if not t.dump_file or not t.reference or not t.compare:
            continue
        want = expected(t, refs, rgb01, steps)
        if want is None or t.dump_file in quirk:
            continue
        got = np.asarray(dumps[t.dump_file][0], np.float64).reshape(-1)
        want = np.asarray(want, np.float64).reshape(-1)
        assert got.size == want.size, (t.name, got.size, want.size)
        diff = np.abs(got - want)
        max_rel = diff.max() / max(np.abs(want).max(), 1e-6)
        mean_rel = diff.mean() / max(np.abs(want).mean(), 1e-6)
        compared += 1
        if not (max_rel < MAX_REL and mean_rel < MEAN_REL):
            failures.append(f"{t.name}: max rel {max_rel:.3g}, mean rel {mean_rel:.3g}")
    assert compared > 5
    assert not failures, f"{spec}: " + "; ".join(failures[:10])

    out = manifest.output
    if out.kind == "classifier":
        by_name = {t.name: t for t in manifest.tensors}
        ref_t = by_name[out.tensor]
        got = result["output"].astype(np.float32).reshape(-1)
        want = np.asarray(expected(ref_t, refs, rgb01, steps), np.float32).reshape(-1)
        top_want = list(np.argsort(-want, kind="stable")[:5])
        # Probabilities below float16's resolution are 0 on the device (and on a phone): compare
        # the leading entries that float16 can tell apart ...
        k = max(1, sum(want[i] > 1e-4 for i in top_want))
        assert list(np.argsort(-got, kind="stable")[:k]) == top_want[:k]
        # ... and the full top-5 of the logits that feed the softmax.
        logits_t = by_name.get((ref_t.inputs or [None])[0])
        if logits_t and logits_t.dump_file and logits_t.reference:
            lg = np.asarray(dumps[logits_t.dump_file][0], np.float32).reshape(-1)
            lw = np.asarray(expected(logits_t, refs, rgb01, steps), np.float32).reshape(-1)
            assert list(np.argsort(-lg, kind="stable")[:5]) == list(np.argsort(-lw, kind="stable")[:5])


@pytest.mark.parametrize("kind", ["transpose", "stride", "bias", "garbage"])
def test_faults_on_a_converted_network(kind, tmp_path_factory):
    """On a converted MobileNet every fault kind makes its layer the first deviating dump."""
    spec = "mobilenet"
    base = Path(os.environ.get("REFDEV_NETWORK_DIR") or tmp_path_factory.getbasetemp()) / f"net-{spec}"
    base.mkdir(parents=True, exist_ok=True)
    manifest_path = convert(spec, base)
    manifest = load_manifest(manifest_path)
    builder = next((base / "S").glob("*Builder.swift"))
    rgba = np.random.default_rng(0).integers(
        0, 256, (manifest.input.height, manifest.input.width, 4), dtype=np.uint8)

    clean = ReferenceDevice(builder, manifest_path.parent)
    ref = clean.forward(rgba, dump="all")["dumps"]
    layers = [t for t in clean.tensors if t.layer is not None]
    convs = [t for t in layers if t.layer.type_name in ("Conv", "PointwConv") and t.layer.use_bias]
    dws = [t for t in layers if t.layer.type_name == "DepthwConv"]
    target = (convs if kind == "bias" or not dws else dws)[len(dws) // 2 if dws and kind != "bias"
                                                           else len(convs) // 2]
    faulty = ReferenceDevice(builder, manifest_path.parent, fault=f"{kind}:{target.layer.name}")
    got = faulty.forward(rgba, dump="all")["dumps"]
    first = None
    for t in clean.tensors:
        name = clean.file_name(t)
        if name in ref and not np.array_equal(ref[name][0], got[name][0]):
            first = name
            break
    assert first == clean.file_name(target)
