"""Synthetic results files of the validation suite's format (keras2metal.results/1) for the tests."""
import json
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parent / "data"

# the eight networks of the zoo plus the embedded default model, as the validation suite names them
MODELS = [
    # model, source, (W, H), layers, tensors, parameters
    ("tiny_yolo", "tiny_yolo", (416, 416), 16, 17, 15_867_885),
    ("yolo", "yolo", (608, 608), 31, 33, 50_983_561),
    ("vgg_16", "vgg16", (224, 224), 21, 23, 138_357_544),
    ("resnet_50", "resnet50", (224, 224), 94, 111, 25_530_472),
    ("inception_v3", "inception_v3", (299, 299), 120, 130, 23_817_352),
    ("inception_resnet_v2", "inception_resnet_v2", (299, 299), 410, 420, 55_813_192),
    ("mobilenet", "mobilenet", (224, 224), 57, 59, 4_231_976),
    ("xception", "xception", (299, 299), 80, 90, 22_855_952),
    ("default", "default", (64, 64), 7, 9, 12_345),
]

ENVIRONMENT = {"python": "3.11.9", "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "1.26.4",
               "platform": "Linux-6.1-x86_64", "host": "ci-runner-1"}


def make_results(model="resnet_50", source="resnet50", size=(224, 224), layers=94, tensors=111,
                 parameters=25_530_472, n=None, seed=0, fail_at=None, device="reference device"):
    """A plausible results dict: n tensors with rising errors; ``fail_at`` makes tensors from that
    index on exceed their budget."""
    rng = np.random.default_rng(seed)
    n = tensors if n is None else n
    rows = []
    for i in range(n):
        mean_abs = float(f"{1e-4 * (1 + i / 10) * (1 + rng.random()):.4g}")
        rel = float(f"{2e-4 * (1 + i / 5) * (1 + rng.random()):.4g}")
        budget = {"rule": "default" if i % 7 else "conv*", "mean_abs": 0.01, "max_abs": 0.5,
                  "rel_error": 0.05}
        status = "pass"
        reason = ""
        if fail_at is not None and i >= fail_at:
            rel = float(f"{0.06 * (1 + (i - fail_at) / 4):.4g}")
            status, reason = "fail", f"rel_error {rel:.3g} > budget 0.05 (default)"
        lo = float(f"{-3 * rng.random():.4g}")
        rows.append({
            "name": f"layer_{i:03d}", "keras_layer": f"keras_{i:03d}", "forge_type": "Conv",
            "index": i + 1, "shape": [56, 56, 64] if i else [224, 224, 3],
            "range": [lo, float(f"{1 + 10 * rng.random():.4g}")],
            "max_abs": float(f"{mean_abs * 20:.4g}"), "mean_abs": mean_abs,
            "rmse": float(f"{mean_abs * 1.3:.4g}"), "rel_error": rel,
            "cosine": float(f"{1 - rel ** 2 / 2:.8f}"), "nan_inf": 0, "budget": budget,
            "status": status, "reason": reason})
    first = None
    if fail_at is not None and fail_at < n:
        first = {"tensor": rows[fail_at]["name"], "keras_layer": rows[fail_at]["keras_layer"],
                 "index": rows[fail_at]["index"], "hint": "check the padding of this layer"}
    worst = max(rows, key=lambda r: r["rel_error"] / 0.05) if rows else None
    return {
        "format": "keras2metal.results/1", "model": model, "source_model": source,
        "weights": "random", "seed": 0, "input_size": list(size), "device": device,
        "environment": dict(ENVIRONMENT),
        "command": f"pytest validation --model {source} --reference-device --results "
                   f"results/{model}.json",
        "totals": {"layers": layers, "tensors": tensors, "parameters": parameters},
        "performance": {"fps": round(1000 / (parameters / 1e6 + 5), 1),
                        "latency_s": {"mean": 0.081, "min": 0.079, "max": 0.09},
                        "source": "reference device timing"},
        "accuracy": {"images": 8, "labelled": 8, "device": {"top1": 0.875, "top5": 1.0},
                     "keras": {"top1": 0.875, "top5": 1.0},
                     "agreement": {"top1": 1.0, "top5": 1.0}},
        "tensors": rows,
        "first_divergence": first,
        "worst_tensor": None if worst is None else {
            "tensor": worst["name"], "metric": "rel_error", "value": worst["rel_error"],
            "budget": 0.05},
        "regressions": [],
        "passed": first is None,
    }


def write_json(path, data) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def all_models(folder) -> list:
    """Results files of the eight networks and the default model in ``folder``."""
    paths = []
    for k, (model, source, size, layers, tensors, params) in enumerate(MODELS):
        data = make_results(model, source, size, layers, tensors, params, n=min(tensors, 60),
                            seed=k, fail_at=45 if model == "resnet_50" else None)
        paths.append(write_json(Path(folder) / f"{model}.json", data))
    return paths


def assert_picture(path, min_w=400, min_h=200):
    """A PNG of a reasonable size that is not blank (many colours, real contrast)."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert w >= min_w and h >= min_h, (w, h)
        pixels = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 10, "picture is (nearly) blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
