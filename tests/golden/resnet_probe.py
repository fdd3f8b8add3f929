"""ResNet-50 with a generated manifest, for the golden benchmark; run as a script it measures.

``python tests/golden/resnet_probe.py memory N WORKDIR`` captures N images (the sample images,
repeated under distinct names) and prints JSON with the process's peak RSS (VmHWM) and
tracemalloc peak.  ``python tests/golden/resnet_probe.py speed ROUNDS WORKDIR`` times golden
capture against ``model.predict`` side by side (:func:`speed`) and prints JSON.

The manifest lists one tensor per Forge-visible activation: every ReLU/Add/pooling/Dense output
of keras.applications.ResNet50 (convolutions and BatchNorms are fused into the activation that
follows them, as the converter does), plus the image and the caffe preprocessing steps.
"""
import json
import shutil
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from probing import peak_rss_kb  # noqa: E402

IMAGES = HERE.parents[1] / "core" / "data" / "images"
CAFFE = [
    {"op": "swap_channels", "permute": [2, 1, 0], "tensor": "rgb2bgr"},
    {"op": "subtract_mean", "scale": 255.0, "mean": [103.939, 116.779, 123.68],
     "tensor": "subtract_mean"},
]


def build_resnet50():
    from core.kerasenv import keras

    keras.utils.set_random_seed(0)
    return keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))


# The Forge typeName each probed Keras layer kind becomes.
FORGE_TYPES = {"Activation": "Activation", "ReLU": "Activation", "Add": "Add",
               "MaxPooling2D": "MaxPool", "GlobalAveragePooling2D": "GlbAvgPool", "Dense": "Dense"}


def resnet_manifest(model, folder: Path) -> Path:
    """A manifest (core/manifest.py layout) with a tensor per fused activation of ResNet-50."""
    tensors = [
        {"name": "__Resize_1__", "forge_type": "Resize", "shape": [224, 224, 3],
         "reference": {"kind": "image"}},
        {"name": "rgb2bgr", "forge_type": "Custom", "shape": [224, 224, 3],
         "reference": {"kind": "preprocessing", "step": 0}},
        {"name": "subtract_mean", "forge_type": "Custom", "shape": [224, 224, 3],
         "reference": {"kind": "preprocessing", "step": 1}},
    ]
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in FORGE_TYPES:
            continue
        shape = [int(s) for s in layer.output.shape[1:]]
        if len(shape) == 1:
            shape = [1, 1, shape[0]]
        tensors.append({"name": layer.name, "forge_type": FORGE_TYPES[kind], "shape": shape,
                        "reference": {"kind": "keras", "layer": layer.name, "output_index": 0,
                                      "affine": None}})
    for i, t in enumerate(tensors):
        h, w, c = t["shape"]
        t.update(index=i, forge_shape=[w, h, c, 1], dump_file=f"resnet_50-{t['name']}.floats",
                 inputs=[], keras_layers=[t["name"]], compare=True, weights=[])
    manifest = {
        "format": "keras2metal.manifest/1", "name": "resnet_50",
        "builder": {"class": "Resnet50Builder", "file": "Resnet50Builder.swift"},
        "source": {"model": "resnet50", "weights": "random", "seed": 0, "keras": "3",
                   "tensorflow": "2", "folded_model": None},
        "input": {"width": 224, "height": 224, "channels": 3, "keras_input": "input_layer"},
        "preprocessing": {"family": "caffe", "steps": CAFFE},
        "output": {"tensor": "predictions", "kind": "classifier", "classes": 1000},
        "tensors": tensors, "weights": [],
        "totals": {"layers": len(tensors), "tensors": len(tensors), "parameters": 0},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "resnet_50.manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def image_set(n: int, folder: Path) -> list:
    """n distinct image files (the sample images, copied under new names as needed)."""
    sources = sorted(IMAGES.glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = sources[i % len(sources)]
        dst = folder / f"{i:03d}-{src.name}"
        if not dst.exists():
            shutil.copyfile(src, dst)
        out.append(dst)
    return out


def memory(n: int, work: Path) -> dict:
    """Peak memory of capturing ``n`` images into a store."""
    from golden import capture_golden

    model = build_resnet50()
    manifest = resnet_manifest(model, work)
    images = image_set(n, work / f"images-{n}")
    rss_model = peak_rss_kb()
    tracemalloc.start()
    start = time.perf_counter()
    capture_golden(model, manifest, images, work / f"golden-{n}.h5", progress=False)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"images": n, "seconds": seconds, "rss_after_model_kb": rss_model,
            "peak_rss_kb": peak_rss_kb(),
            "tracemalloc_peak_bytes": traced_peak}


def speed(rounds: int, work: Path, n: int = 8) -> dict:
    """Seconds of ``model.predict`` on ``n`` preprocessed images in one batch, of the suite's
    golden path (one GoldenRunner, ``records`` image by image) and of ``capture_golden`` writing
    a store, each target timed right after a baseline run, ``rounds`` times (after a warm-up)."""
    import numpy as np

    from core.manifest import load_manifest
    from golden import GoldenRunner, capture_golden, preprocess_steps
    from imagesets.images import load_rgb01

    model = build_resnet50()
    manifest = load_manifest(resnet_manifest(model, work))
    images = image_set(n, work / f"images-{n}")
    x = np.stack([preprocess_steps(load_rgb01(p, 224, 224), CAFFE)[-1] for p in images])
    runner = GoldenRunner(model, manifest)

    def predict():
        return model.predict(x, batch_size=n, verbose=0)

    def capture():
        """A new store, as the suite writes one (replacing an old 320 MB store would add its
        deletion); deleted after it is timed."""
        return capture_golden(model, manifest, images, work / "golden-speed.h5", progress=False)

    def timed(run):
        start = time.perf_counter()
        result = run()
        return time.perf_counter() - start, result

    predict(), capture(), [runner.records(p) for p in images]              # warm-up
    (work / "golden-speed.h5").unlink()
    out = {"images": n, "tensors": len(manifest.tensors), "predict_s": [], "runner_s": [],
           "predict_before_capture_s": [], "capture_s": []}
    for _ in range(rounds):
        out["predict_s"].append(timed(predict)[0])
        seconds, records = timed(lambda: [runner.records(p) for p in images])
        out["runner_s"].append(seconds)
        out["predict_before_capture_s"].append(timed(predict)[0])
        seconds, summary = timed(capture)
        out["capture_s"].append(seconds)
        (work / "golden-speed.h5").unlink()
    probabilities = predict()
    out["runner_statuses"] = sorted({s for record in records for _, s, _ in record.values()})
    out["runner_max_rel_error"] = max(
        float(np.max(np.abs(r["predictions"][0].reshape(-1) - p) / (np.abs(p) + 1e-7)))
        for r, p in zip(records, probabilities))
    out["capture_statuses"] = summary["statuses"]
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    mode, count, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    print(json.dumps(memory(count, folder) if mode == "memory" else speed(count, folder)))
