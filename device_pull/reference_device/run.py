"""Run the reference device over images and write what the phone writes.

Output folder (``out_dir``)::

    run-<model>.json                      the run log (top-5, latency, fps, fault, warnings)
    <image stem>/<model>-<tensor>.floats  float32 HWC dumps (DocumentDirectoryDumper naming)
    <image stem>/shapes-<model>.json      {file name: [W, H, C, N]}

Every file is written atomically (a temporary file in the same folder, then ``os.replace``).
"""
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from .device import ReferenceDevice
from .forge import ReferenceDeviceError
from core.atomic import write_bytes

DEVICE_LABEL = "reference device"


def atomic_write_json(path, obj):
    # JSONSerialization .prettyPrinted style: two-space indent, "key" : value.
    text = json.dumps(obj, indent=2, separators=(",", " : "))
    write_bytes(path, (text + "\n").encode("utf-8"))


def top_k(values: np.ndarray, k: int = 5) -> list:
    """[(index, value)] of the k largest values, ties by lower index (over the flattened tensor)."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    order = np.argsort(-flat, kind="stable")[:k]
    return [{"index": int(i), "probability": float(flat[i])} for i in order]


def host_info() -> dict:
    return {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__}


def load_texture(path) -> np.ndarray:
    """An image file as the 8-bit RGBA texture the phone's texture loader makes."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGBA"), dtype=np.uint8).copy()
    except OSError as exc:
        raise ReferenceDeviceError(f"{path}: cannot read the image ({exc})") from None


def list_images(images) -> list:
    """Folder(s)/files → sorted image paths, with the project's per-image key rules."""
    try:
        from imagesets.images import ImageError, list_images as core_list
    except ImportError:  # pragma: no cover - core is part of the project
        core_list, ImageError = None, ValueError
    if core_list is not None:
        try:
            return core_list(images)
        except ImageError as exc:
            raise ReferenceDeviceError(str(exc)) from None
    return sorted(Path(p) for p in ([images] if isinstance(images, (str, Path)) else images))


def write_dumps(folder, model_name: str, dumps: dict):
    """``<model>-<tensor>.floats`` (float32) for each dump plus ``shapes-<model>.json``."""
    folder = Path(folder)
    shapes = {}
    for file_name, (array, shape) in dumps.items():
        write_bytes(folder / file_name,
                           np.ascontiguousarray(array, dtype="<f4").tobytes())
        shapes[file_name] = [int(v) for v in shape]
    atomic_write_json(folder / f"shapes-{model_name}.json", shapes)


def run_reference_device(builder_path, param_dir, images, out_dir, dump: str = "all",
                         fault=None, log=None) -> dict:
    """Run the builder + parameters on each image, write dumps and the run log; return the log.

    ``images``: a folder, an image file, or a list of them.  ``dump``: "all" (every tensor, as
    ``debugEvaluate``) or "output" (only the output tensor).  ``fault``: "KIND:LAYER" or None.
    ``log``: optional callable for progress lines.
    """
    if dump not in ("all", "output"):
        raise ReferenceDeviceError(f"dump must be 'all' or 'output', not {dump!r}")
    say = log or (lambda msg: None)
    device = ReferenceDevice(builder_path, param_dir, fault=fault)
    paths = list_images(images)
    if not paths:
        raise ReferenceDeviceError(f"{images}: no images to run")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, latencies = [], []
    for path in paths:
        texture = load_texture(path)
        start = time.perf_counter()
        result = device.forward(texture, dump=dump)
        latency = time.perf_counter() - start
        latencies.append(latency)
        stem = Path(path).stem
        write_dumps(out_dir / stem, device.name, result["dumps"])
        if result["resized"]:
            msg = (f"{Path(path).name}: {texture.shape[1]}x{texture.shape[0]} resized to the "
                   "network input with Lanczos (Pillow) — the phone's MPSImageLanczosScale "
                   "differs slightly; use pre-sized images for exact comparisons")
            device.warnings.append(msg)
            say(msg)
        top5 = top_k(result["output"], 5)
        entries.append({"image": Path(path).name, "dump_dir": stem, "top5": top5,
                        "latency_s": latency, "resized": bool(result["resized"])})
        say(f"{Path(path).name}: top-1 {top5[0]['index']} ({top5[0]['probability']:.4f}), "
            f"{latency * 1000:.1f} ms")
    lat = np.array(latencies)
    log_obj = {
        "model": device.name,
        "device": DEVICE_LABEL,
        "host": host_info(),
        "builder": str(builder_path),
        "param_dir": str(param_dir),
        "dump": dump,
        "output_tensor": device.model.output.short_id,
        "images": entries,
        "fps": float(len(lat) / lat.sum()) if lat.sum() > 0 else None,
        "latency_s": {"mean": float(lat.mean()), "min": float(lat.min()), "max": float(lat.max())},
        "fault": None if device.fault is None else f"{device.fault[0]}:{device.fault[1]}",
        "warnings": list(dict.fromkeys(device.warnings)),
        "layers": sum(1 for t in device.tensors if t.layer is not None),
        "tensors": len(device.tensors),
    }
    atomic_write_json(out_dir / f"run-{device.name}.json", log_obj)
    return log_obj
