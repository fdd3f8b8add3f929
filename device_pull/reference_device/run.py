"""Run the reference device over images and write what the phone writes.

The phone's app writes one run flat into its Documents folder; so does this.  One image::

    <out>/<model>-<tensor>.floats   float32 HWC dumps (DocumentDirectoryDumper naming)
    <out>/shapes-<model>.json       {file name: [W, H, C, N]}
    <out>/run-<model>.json          the run log: image, manifest hash, device, latency, top-5, ...

Several images: the same three per image in ``<out>/<image stem>/`` (one folder per image, named
after it, each with its own run log; nothing at the top), the layout device_pull.ingest reads as
"one folder per image".  Every file is written atomically (core.atomic).
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
from core.manifest import ManifestError, as_manifest, load_manifest, manifest_hash
from imagesets.images import ImageError, list_images as image_list, load_rgb8

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
    try:
        return load_rgb8(path, mode="RGBA")
    except ImageError as exc:
        raise ReferenceDeviceError(str(exc)) from None


def list_images(images) -> list:
    """Folder(s)/files → sorted image paths, with the project's per-image key rules."""
    try:
        return image_list(images)
    except ImageError as exc:
        raise ReferenceDeviceError(str(exc)) from None


def write_dumps(folder, model_name: str, dumps: dict):
    """``<model>-<tensor>.floats`` (float32) for each dump plus ``shapes-<model>.json``."""
    folder = Path(folder)
    shapes = {}
    for file_name, (array, shape) in dumps.items():
        write_bytes(folder / file_name, np.ascontiguousarray(array, dtype="<f4").tobytes())
        shapes[file_name] = [int(v) for v in shape]
    atomic_write_json(folder / f"shapes-{model_name}.json", shapes)


def _manifest_sha256(manifest, param_dir, model_name: str):
    """The content hash of the conversion's manifest (given, or
    ``<param_dir>/<model>.manifest.json`` when present), or None for a builder without one."""
    if manifest is None:
        manifest = Path(param_dir) / f"{model_name}.manifest.json"
        if not manifest.is_file():
            return None
    try:
        manifest = load_manifest(manifest) if isinstance(manifest, (str, Path)) else \
            as_manifest(manifest)
    except ManifestError as exc:
        raise ReferenceDeviceError(str(exc)) from None
    if manifest.name != model_name:
        raise ReferenceDeviceError(
            f"{manifest.path or 'the manifest'} is of model {manifest.name!r}, the "
            f"builder of {model_name!r}; pass the manifest keras2metal wrote with this builder")
    return manifest_hash(manifest)


def run_reference_device(builder_path, param_dir, images, out_dir, dump: str = "all",
                         fault=None, log=None, manifest=None) -> dict:
    """Run the builder + parameters on each image and write what the phone writes; return a summary.

    One image: ``out_dir`` itself is the run folder (flat, like the app's Documents folder).
    Several images: one run folder per image, ``out_dir/<image stem>/``.  Each run folder holds
    the dumps, ``shapes-<model>.json`` and ``run-<model>.json`` (image, manifest hash, device,
    host, latency per run, top-5, fault, warnings).

    ``images``: a folder, an image file, or a list of them.  ``dump``: "all" (every tensor, as
    ``debugEvaluate``) or "output" (only the output tensor).  ``fault``: "KIND:LAYER" or None.
    ``manifest``: the conversion's manifest (path or dict) whose hash the run logs carry
    (default: ``<param_dir>/<model>.manifest.json`` when present).  ``log``: optional callable
    for progress lines.  The summary has the run logs (``runs``, each with its ``folder``), fps,
    latency and the warnings of all runs.
    """
    if dump not in ("all", "output"):
        raise ReferenceDeviceError(f"dump must be 'all' or 'output', not {dump!r}")
    say = log or (lambda msg: None)
    device = ReferenceDevice(builder_path, param_dir, fault=fault)
    sha256 = _manifest_sha256(manifest, param_dir, device.name)
    paths = list_images(images)
    if not paths:
        raise ReferenceDeviceError(f"{images}: no images to run")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = {
        "model": device.name,
        "device": DEVICE_LABEL,
        "host": host_info(),
        "builder": str(builder_path),
        "param_dir": str(param_dir),
        "dump": dump,
        "output_tensor": device.model.output.short_id,
        "fault": None if device.fault is None else f"{device.fault[0]}:{device.fault[1]}",
        "layers": sum(1 for t in device.tensors if t.layer is not None),
        "tensors": len(device.tensors),
    }
    compile_warnings = list(device.warnings)
    runs, latencies = [], []
    for path in paths:
        first_warning = len(device.warnings)
        texture = load_texture(path)
        start = time.perf_counter()
        result = device.forward(texture, dump=dump)
        latency = time.perf_counter() - start
        latencies.append(latency)
        folder = out_dir if len(paths) == 1 else out_dir / Path(path).stem
        write_dumps(folder, device.name, result["dumps"])
        if result["resized"]:
            msg = (f"{Path(path).name}: {texture.shape[1]}x{texture.shape[0]} resized to the "
                   "network input with Lanczos (Pillow) — the phone's MPSImageLanczosScale "
                   "differs slightly; use pre-sized images for exact comparisons")
            device.warnings.append(msg)
            say(msg)
        top5 = top_k(result["output"], 5)
        run_log = {"image": Path(path).name, "manifest_sha256": sha256, **common,
                   "latency_s": [latency], "top5": top5, "resized": bool(result["resized"]),
                   "warnings": list(dict.fromkeys(compile_warnings
                                                  + device.warnings[first_warning:]))}
        atomic_write_json(folder / f"run-{device.name}.json", run_log)
        runs.append({**run_log, "folder": str(folder)})
        say(f"{Path(path).name}: top-1 {top5[0]['index']} ({top5[0]['probability']:.4f}), "
            f"{latency * 1000:.1f} ms")
    lat = np.array(latencies)
    return {**common, "manifest_sha256": sha256, "runs": runs,
            "fps": float(len(lat) / lat.sum()) if lat.sum() > 0 else None,
            "latency_s": {"mean": float(lat.mean()), "min": float(lat.min()),
                          "max": float(lat.max())},
            "warnings": list(dict.fromkeys(device.warnings))}
