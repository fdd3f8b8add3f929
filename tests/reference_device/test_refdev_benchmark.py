"""The reference device's forward pass against TensorFlow's ``predict`` on the same images.

Slow.  Each round runs ``model.predict`` on each of three sample images (the Keras input after
the manifest's preprocessing), then the reference device on the same images' textures, in one
process; the ratio (device / predict, median over rounds) is in ``extra_info``; goal ≤ 2 on
ResNet-50.  Run with ``pytest tests/reference_device/test_refdev_benchmark.py -m slow
--benchmark-enable --benchmark-json=bench.json``.

Where the device's time went (ResNet-50, py-spy): 61% in the convolutions' matrix products,
7% rounding to float16, 4% building im2col patches, 3-4% each the merges (Add), copies into
destination images and standalone activations.  Before, the products ran on as many BLAS threads
as the host has: on a 2-core machine busy with other work two OpenBLAS threads wait on each other
and a pass took 0.34 s against 0.16 s on one thread (2.0-3.4 × predict); they also summed in
another order than the measuring workers' single thread, so the device's numbers depended on the
host.  The device now runs every pass on one BLAS thread (threadpoolctl), which is what the
measuring workers always did: same numbers everywhere, and ~1 × predict here.

Ratios measured on ResNet-50 (median of 5 rounds per run), before → after: 3.90, 6.93, 3.33 →
1.05, 1.19, 1.14, 0.97 (MobileNet: 1.03, 2.56, 1.82 → 0.50, 0.53, 0.60, 0.50).  The dumps of
the default model, MobileNet and ResNet-50 on six images hash the same as before on one thread.
"""
import pytest

from core.manifest import load_manifest
from core.zoo import load_model
from device_pull.reference_device import ReferenceDevice
from device_pull.reference_device.run import load_texture
from golden import preprocess_steps
from imagesets.images import list_images, load_rgb01
from refdev_support import ROOT, convert
from validation.metrics import top_k

pytestmark = pytest.mark.slow

IMAGES = list_images(ROOT / "core" / "data" / "images")[:3]


@pytest.mark.benchmark(group="reference_device")
@pytest.mark.parametrize("spec", ["resnet50", "mobilenet"])
def test_forward_vs_tensorflow_predict(spec, benchmark, side_by_side, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"net-{spec}")
    manifest_path = convert(spec, base)
    device = ReferenceDevice(next((base / "S").glob("*Builder.swift")), manifest_path.parent)
    manifest = load_manifest(manifest_path)
    model = load_model(spec, "random", 0)
    w, h = manifest.input.width, manifest.input.height
    steps = manifest.preprocessing.steps
    keras_inputs = [preprocess_steps(load_rgb01(p, w, h), steps)[-1][None] for p in IMAGES]
    textures = [load_texture(p) for p in IMAGES]
    model.predict(keras_inputs[0], verbose=0)                  # warm up: tracing
    device.forward(textures[0])

    keras_out = []

    def predict():
        keras_out[:] = [model.predict(x, verbose=0) for x in keras_inputs]

    outputs = side_by_side.run(benchmark, lambda: [device.forward(t)["output"] for t in textures],
                               predict, rounds=5)
    info = side_by_side.record(benchmark, goal=2.0, before="3.3-6.9 (resnet50)", model=spec,
                               images=len(IMAGES))
    print(f"\n{spec}: reference device {info['target_s']:.3f} s, TensorFlow predict "
          f"{info['baseline_s']:.3f} s for {len(IMAGES)} images, ratio {info['ratio']:.2f}")
    for image, device_out, keras_probs in zip(IMAGES, outputs, keras_out):
        device_top5, keras_top5 = top_k(device_out, 5), top_k(keras_probs, 5)
        # float16 may swap two classes whose probabilities differ by less than its step
        assert device_top5[0] == keras_top5[0] and set(device_top5) == set(keras_top5), \
            (image.name, device_top5, keras_top5)
