"""Ingest a device dump folder into a store keyed by the manifest's Forge tensor names.

Accepted input (a folder as copied off the phone, or as written by the reference device):

* ``<model>-<tensor>.floats`` files, named as the manifest's ``dump_file`` says (Forge's
  ``__Type_n__`` and ``__Concat_x__`` names and the Concat partial dumps included);
* ``shapes-<model>.json`` (``shapes.json`` also accepted): file name → ``[W, H, C, N]``;
* ``run-<model>.json`` at the top: the run log (images with their dump folder, top-5, latency;
  fps, latency statistics, device, warnings);
* an Xcode console log of the Forge fork's model tests (``Compiling took <s> seconds``,
  ``predictions:[(label: "...", probability: p, index: i), ...]``), a fallback for predictions.

Folder structure: with a run log, its ``images[*].dump_dir`` (relative to the folder) gives one
folder per image; without one, either the ``.floats`` lie in the folder itself (one image, key =
``image`` argument or the folder name) or in one sub-folder per image (key = sub-folder name).

Layout rule (the file size and the manifest's H, W, C decide; ``shapes-<model>.json`` is checked
against the manifest).  Candidates, in order of preference:

1. ``interleaved-float32``: ``[y][x][c]`` float32, H·W·C·4 bytes (Forge's dumper,
   ``toFloatArrayChannelsInterleaved``);
2. ``padded-float32``: ``[slice][y][x][4]`` float32, H·W·ceil(C/4)·4·4 bytes (``toFloatArray``;
   the padding components of the last slice are dropped);
3. ``interleaved-float16`` and 4. ``padded-float16``: the same with 2-byte halves.

For C < 3 the padded layout is the interleaved one (MPS keeps 1 or 2 components per pixel), so
only the interleaved candidates apply.  A size that fits exactly one candidate decides.  When
C % 4 == 0 the interleaved and padded sizes are equal and the order differs: the file is read as
interleaved (Forge's dumper), the dataset's ``layout_note`` says so, and the CLI summary counts
these files; ``layout="padded"`` (``--layout padded``) reads them as padded instead.
``dtype`` (``--dtype``) restricts the candidates to one element type.  A size that fits no
candidate is ``truncated`` (smaller than H·W·C·4) or ``oversized`` (larger); its bytes are kept
as flat float32.

Per tensor the store records status and reason (see :mod:`stores.store`): ``missing`` (no file),
``wrong_model`` (a file of another model's prefix), ``shape_mismatch`` (shapes json disagrees
with the manifest), ``truncated``/``oversized``, ``nan_inf`` (values kept), ``not_compared``
(``__Input__``, tensors the manifest marks ``compare: false``, tensors Forge writes no file for).
Unknown extra ``.floats`` files are listed per image (``ignored_files``) and in the summary.
"""
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagesets.images import image_key, image_size, list_images
from core.manifest import load_manifest
from stores.store import StoreWriter

LAYOUTS = ("auto", "interleaved", "padded")
DTYPES = ("auto", "float32", "float16")
REFERENCE_DEVICE = "reference device"


class IngestError(ValueError):
    """Input that cannot be ingested at all (no manifest, no dump folder, no dumps)."""


# -- decoding one file -----------------------------------------------------------------------

def candidates(h: int, w: int, c: int) -> list:
    """(layout name, element dtype, padded?, byte count) in order of preference."""
    out = [("interleaved-float32", "<f4", False, h * w * c * 4)]
    padded = c >= 3
    c4 = math.ceil(c / 4) * 4
    if padded:
        out.append(("padded-float32", "<f4", True, h * w * c4 * 4))
    out.append(("interleaved-float16", "<f2", False, h * w * c * 2))
    if padded:
        out.append(("padded-float16", "<f2", True, h * w * c4 * 2))
    return out


def deslice(flat: np.ndarray, h: int, w: int, c: int) -> np.ndarray:
    """``[slice][y][x][4]`` → ``[y][x][c]`` (padding components dropped)."""
    slices = math.ceil(c / 4)
    return np.ascontiguousarray(
        flat.reshape(slices, h, w, 4).transpose(1, 2, 0, 3).reshape(h, w, slices * 4)[:, :, :c])


@dataclass
class Decoded:
    data: np.ndarray
    status: str
    reason: str
    layout: str = ""
    note: str = ""


def decode(raw: bytes, shape, file: str, *, layout: str = "auto", dtype: str = "auto") -> Decoded:
    """Decode one dump file's bytes for manifest shape (H, W, C) by the module's layout rule."""
    h, w, c = (int(s) for s in shape)
    size = len(raw)
    allowed = [cand for cand in candidates(h, w, c)
               if (layout == "auto" or cand[0].startswith(layout) or (layout == "padded" and c < 3))
               and (dtype == "auto" or cand[0].endswith(dtype))]
    fits = [cand for cand in allowed if cand[3] == size]
    if not fits:
        expected = ", ".join(f"{cand[3]} ({cand[0]})" for cand in allowed) or "none"
        status = "truncated" if size < h * w * c * 4 else "oversized"
        usable = size - size % 4
        flat = np.frombuffer(raw[:usable], dtype="<f4").astype(np.float32)
        what = "shorter" if status == "truncated" else "longer"
        return Decoded(flat, status, (
            f"{file}: {size} bytes is {what} than any accepted layout of {h}x{w}x{c} "
            f"(expected {expected}); the copy is incomplete or the file belongs to another build "
            "of the network: copy the Documents folder again or re-run the app"
            + ("" if layout == "auto" and dtype == "auto"
               else f" (restricted by layout={layout}, dtype={dtype})")))
    name, elem, padded, _ = fits[0]
    flat = np.frombuffer(raw, dtype=elem).astype(np.float32)
    data = deslice(flat, h, w, c) if padded else flat.reshape(h, w, c)
    note = ""
    if len(fits) > 1:
        others = ", ".join(cand[0] for cand in fits[1:])
        note = (f"{file}: {size} bytes fits {name} and {others} (C % 4 == 0); read as {name} by "
                "the layout rule (Forge's dumper writes interleaved); pass --layout padded for "
                "dumps made with toFloatArray()")
    return Decoded(data, "ok", "", name, note)


def _nan_inf(data: np.ndarray) -> int:
    return int(np.count_nonzero(~np.isfinite(data))) if data.size else 0


# -- console log -----------------------------------------------------------------------------

_MODEL_RE = re.compile(r"Successfully compiled model\s+(\S+)")
_COMPILE_RE = re.compile(r"Compiling took\s+([-+0-9.eE]+)\s+seconds")
_PRED_RE = re.compile(r"predictions:\s*\[(.*)\]")
_ENTRY_RE = re.compile(r'\(\s*label:\s*"((?:[^"\\]|\\.)*)"\s*,\s*probability:\s*([-+0-9.eE]+|nan|inf)'
                       r'\s*,\s*index:\s*(\d+)\s*\)')


def parse_console_log(text: str) -> dict:
    """Forge model-test console output → {model or None: {"compile_s": [...], "predictions": [[...]]}}.

    ``Compiling took`` precedes ``Successfully compiled model <name>``; predictions follow it.
    Lines before any model line are filed under ``None``.
    """
    models = {}
    current, pending_compile = None, None

    def slot(name):
        return models.setdefault(name, {"compile_s": [], "predictions": []})

    for line in text.splitlines():
        m = _COMPILE_RE.search(line)
        if m:
            pending_compile = float(m.group(1))
            continue
        m = _MODEL_RE.search(line)
        if m:
            current = m.group(1)
            if pending_compile is not None:
                slot(current)["compile_s"].append(pending_compile)
                pending_compile = None
            else:
                slot(current)
            continue
        m = _PRED_RE.search(line)
        if m:
            entries = [{"label": lab.replace('\\"', '"'), "probability": float(p), "index": int(i)}
                       for lab, p, i in _ENTRY_RE.findall(m.group(1))]
            slot(current)["predictions"].append(entries)
    if pending_compile is not None:
        slot(current)["compile_s"].append(pending_compile)
    return models


# -- the folder ------------------------------------------------------------------------------

@dataclass
class ImageDump:
    key: str
    folder: Path
    meta: dict = field(default_factory=dict)       # the run log's entry for this image
    warnings: list = field(default_factory=list)


@dataclass
class IngestReport:
    out: str
    model: str
    images: list = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    problems: list = field(default_factory=list)   # (image, tensor, status, reason)
    ignored: dict = field(default_factory=dict)    # image -> [file names]
    warnings: list = field(default_factory=list)
    layout_rule: int = 0                           # files read by the C % 4 == 0 rule
    layouts: Counter = field(default_factory=Counter)


def _read_json(path: Path, warnings: list):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        warnings.append(f"{path}: unreadable JSON ({exc}); ignored")
        return None


def find_run_log(dump_dir: Path, model: str, warnings: list):
    own = dump_dir / f"run-{model}.json"
    if own.is_file():
        return _read_json(own, warnings), own
    others = sorted(dump_dir.glob("run-*.json"))
    if others:
        warnings.append(f"{others[0]}: run log of another model (expected run-{model}.json); "
                        "its images are used, check that the dump belongs to this manifest")
        return _read_json(others[0], warnings), others[0]
    return None, None


def _has_dumps(folder: Path) -> bool:
    return any(folder.glob("*.floats")) or any(folder.glob("shapes*.json"))


def discover(dump_dir: Path, model: str, run_log, *, image=None) -> list:
    """The per-image folders of a dump: list of :class:`ImageDump`."""
    if run_log and isinstance(run_log.get("images"), list) and run_log["images"]:
        dumps = []
        for entry in run_log["images"]:
            name = entry.get("image") or entry.get("dump_dir") or "image"
            key = image_key(name)
            folder = Path(entry.get("dump_dir") or key)
            folder = folder if folder.is_absolute() else dump_dir / folder
            dumps.append(ImageDump(key, folder, entry))
        return dumps
    if any(dump_dir.glob("*.floats")):
        return [ImageDump(image or dump_dir.name, dump_dir)]
    subdirs = sorted(d for d in dump_dir.iterdir() if d.is_dir() and _has_dumps(d))
    if not subdirs:
        raise IngestError(f"{dump_dir}: no .floats dumps, no shapes json and no run-{model}.json "
                          "here or in its sub-folders; copy the app's Documents folder after a "
                          "debug run (or run `python -m device_pull emulate`)")
    return [ImageDump(d.name, d) for d in subdirs]


def _load_shapes(folder: Path, model: str, warnings: list) -> dict:
    for path in (folder / f"shapes-{model}.json", folder / "shapes.json"):
        if path.is_file():
            shapes = _read_json(path, warnings)
            if shapes is not None and not isinstance(shapes, dict):
                warnings.append(f"{path}: not a {{file: [W, H, C, N]}} object; ignored")
                shapes = None
            return shapes or {}
    others = sorted(folder.glob("shapes-*.json"))
    if others:
        warnings.append(f"{others[0]}: shapes json of another model (expected shapes-{model}.json); "
                        "shapes are not checked")
    elif any(folder.glob("*.floats")):
        warnings.append(f"{folder}: no shapes-{model}.json; shapes come from the manifest only")
    return {}


def _forge_hwc(entry: dict):
    shape = entry.get("shape")
    if not shape or len(shape) != 3 or any((not isinstance(s, int)) or s <= 0 for s in shape):
        return None
    return tuple(shape)


def _input_size(dump: ImageDump, images: dict, dump_dir: Path):
    """(W, H) of the image behind a dump, if it can be found (for ``__Input__``)."""
    path = images.get(dump.key)
    if path is None and dump.meta.get("image"):
        for cand in (Path(dump.meta["image"]), dump_dir / dump.meta["image"]):
            if cand.is_file():
                path = cand
                break
    if path is None:
        return None
    try:
        return image_size(path)
    except ValueError:
        return None


def _ingest_image(writer, manifest, dump: ImageDump, dump_dir: Path, report: IngestReport, *,
                  layout, dtype, images):
    model = manifest["name"]
    warnings = dump.warnings
    present = dump.folder.is_dir()
    if not present:
        warnings.append(f"{dump.folder}: dump folder of image {dump.key!r} does not exist")
    shapes = _load_shapes(dump.folder, model, warnings) if present else {}
    files = {p.name: p for p in sorted(dump.folder.glob("*.floats"))} if present else {}
    used = set()
    wanted = {e["dump_file"] for e in manifest["tensors"] if e.get("dump_file")}
    attrs = {"image": Path(dump.meta.get("image") or dump.key).name,
             "dump_dir": str(dump.folder)}
    for key in ("top5", "latency_s"):
        if key in dump.meta:
            attrs[key] = dump.meta[key]
    if "top5" in attrs:
        attrs["top5_source"] = "run log"
    writer.image(dump.key, **attrs)

    for entry in manifest["tensors"]:
        name = entry["name"]
        dump_file = entry.get("dump_file")
        if not dump_file:
            writer.write(dump.key, name, None, "not_compared",
                         "Forge writes no dump file for this tensor (its data is dumped through "
                         "the tensors it collects); nothing to compare")
            report.statuses["not_compared"] += 1
            continue
        path, status, reason, extra = files.get(dump_file), None, "", {}
        if path is None:
            other = _other_model_file(files, wanted, used, model, name)
            if other is None:
                where = dump.folder if present else f"{dump.folder} (folder missing)"
                _record(writer, report, dump.key, name, None, "missing",
                        f"{dump_file} not found in {where}; run the app with debug: true (or "
                        "copy the whole Documents folder again)")
                continue
            path, status = other, "wrong_model"
            prefix = other.name[: -len(f"-{name}.floats")]
            reason = (f"{other.name}: prefix {prefix!r} is another model's, the manifest is "
                      f"{model!r} (expected {dump_file}); ingest with that model's manifest")
        used.add(path.name)
        extra["file"] = path.name
        try:
            raw = path.read_bytes()
        except OSError as exc:
            _record(writer, report, dump.key, name, None, "missing",
                    f"{path}: cannot read the file ({exc}); copy the dump folder again", **extra)
            continue
        hwc = _forge_hwc(entry)
        json_shape = _valid_shape(shapes.get(path.name), path.name, warnings)
        is_input = hwc is None or entry.get("forge_type") == "Input" or \
            (entry.get("reference") or {}).get("kind") == "input_texture"
        if is_input:
            data, in_reason = _decode_input(raw, json_shape, _input_size(dump, images, dump_dir),
                                            path.name)
            _record(writer, report, dump.key, name, data, status or "not_compared",
                    reason or in_reason, **extra)
            continue
        mismatch = _shape_mismatch(json_shape, entry)
        if mismatch:
            dims = (int(json_shape[1]), int(json_shape[0]), int(json_shape[2]))
            dec = decode(raw, dims, path.name, layout=layout, dtype=dtype)
            data = dec.data
            status = status or "shape_mismatch"
            reason = reason or (
                f"{path.name}: shapes json says [W, H, C, N] = {list(json_shape)}, the manifest "
                f"says {entry.get('forge_shape') or [hwc[1], hwc[0], hwc[2], 1]}; the dump comes "
                "from another build of the network: re-run keras2metal and the app, or ingest "
                "with the manifest it was made with")
        else:
            dec = decode(raw, hwc, path.name, layout=layout, dtype=dtype)
            data = dec.data
            if status is None:
                status, reason = dec.status, dec.reason
            if json_shape is None and shapes:
                extra["shape_note"] = f"{path.name} has no entry in the shapes json"
        if dec.layout:
            extra["layout"] = dec.layout
            report.layouts[dec.layout] += 1
        if dec.note:
            extra["layout_note"] = dec.note
            report.layout_rule += 1
        bad = _nan_inf(data)
        if bad:
            nan_text = (f"{path.name}: {bad} NaN/Inf value(s) of {data.size} (kept in the data); "
                        "look for the first layer that has them: an overflow in float16 or "
                        "uninitialised padding")
            if status == "ok":
                status, reason = "nan_inf", nan_text
            else:
                reason += f"; also {bad} NaN/Inf value(s)"
        if status == "ok" and not entry.get("compare", True):
            status, reason = "not_compared", "the manifest marks this tensor compare: false"
        _record(writer, report, dump.key, name, data, status, reason, **extra)

    ignored = sorted(set(files) - used)
    if ignored:
        report.ignored[dump.key] = ignored
    writer.image(dump.key, ignored_files=ignored, warnings=warnings)
    report.warnings.extend(warnings)


def _record(writer, report, image, name, data, status, reason, **extra):
    writer.write(image, name, data, status, reason, **extra)
    report.statuses[status] += 1
    if status not in ("ok", "not_compared"):
        report.problems.append((image, name, status, reason))


def _other_model_file(files, wanted, used, model, name):
    suffix = f"-{name}.floats"
    for fname, path in files.items():
        if fname in used or fname in wanted or not fname.endswith(suffix):
            continue
        prefix = fname[: -len(suffix)]
        if prefix and prefix != model and not prefix.startswith(model + "-"):
            return path
    return None


def _valid_shape(value, file: str, warnings: list):
    """A shapes json entry as a list of ints, or None (with a warning when malformed)."""
    if value is None:
        return None
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return [int(v) for v in value]
    warnings.append(f"shapes json entry of {file} is {value!r}, not [W, H, C, N]; ignored")
    return None


def _shape_mismatch(json_shape, entry) -> bool:
    if not json_shape or len(json_shape) < 3:
        return False
    if any(int(s) <= 0 for s in json_shape[:3]):
        return False
    forge = entry.get("forge_shape")
    if forge and len(forge) >= 3:
        expect = [int(s) for s in forge[:3]]
    else:
        h, w, c = entry["shape"]
        expect = [w, h, c]
    return [int(s) for s in json_shape[:3]] != expect


def _decode_input(raw: bytes, json_shape, size, file: str):
    """``__Input__``: raw B, G, R bytes as float32 at the original image size (shape -1 in json)."""
    flat = np.frombuffer(raw[: len(raw) - len(raw) % 4], dtype="<f4").astype(np.float32)
    dims = None
    if json_shape and len(json_shape) >= 3 and all(int(s) > 0 for s in json_shape[:3]):
        dims = (int(json_shape[1]), int(json_shape[0]), int(json_shape[2]))
    elif size is not None:
        dims = (size[1], size[0], 3)
    if dims and flat.size == dims[0] * dims[1] * dims[2] and len(raw) % 4 == 0:
        return flat.reshape(dims), (f"{file}: the input texture (raw B, G, R bytes at the image's "
                                    "original size); kept for reference, not compared")
    return flat, (f"{file}: the input texture (raw B, G, R bytes); its shape is not recorded "
                  "([-1, -1, -1, 1]) and the image was not found, so it is kept flat; pass "
                  "--images to reshape it; not compared")


def ingest_dump(dump_dir, manifest, out_path, *, layout="auto", dtype="auto", image=None,
                images=None, console_log=None, device=None) -> IngestReport:
    """Read a dump folder and write the device store ``out_path``; returns an :class:`IngestReport`.

    ``manifest``: dict or path.  ``image``: the key of a single-folder dump (default: the folder
    name).  ``images``: image folder/files, used only to shape ``__Input__``.  ``console_log``:
    an Xcode console log (default: ``*.log`` / ``console*.txt`` in ``dump_dir``).  ``device``:
    the device name when the run log has none.
    """
    if layout not in LAYOUTS:
        raise IngestError(f"layout {layout!r}: expected one of {LAYOUTS}")
    if dtype not in DTYPES:
        raise IngestError(f"dtype {dtype!r}: expected one of {DTYPES}")
    if not isinstance(manifest, dict):
        manifest = load_manifest(manifest)
    dump_dir = Path(dump_dir)
    if not dump_dir.is_dir():
        raise IngestError(f"{dump_dir}: no such dump folder; copy the app's Documents folder "
                          "(or `python -m device_pull usb`) first")
    model = manifest["name"]
    report = IngestReport(out=str(out_path), model=model)
    run_log, run_path = find_run_log(dump_dir, model, report.warnings)
    dumps = discover(dump_dir, model, run_log, image=image)
    keys = Counter(d.key for d in dumps)
    clashes = [k for k, n in keys.items() if n > 1]
    if clashes:
        raise IngestError(f"{dump_dir}: several dumps for image key(s) {clashes}; give every image "
                          "its own file stem")
    image_paths = {image_key(p): p for p in list_images(images)} if images else {}

    console = _console(dump_dir, console_log, report.warnings)
    ours = console.get(model) or (console.get(None) if set(console) <= {None} else None) or {}
    if run_log and run_log.get("model") not in (None, model):
        report.warnings.append(f"{run_path}: run log of model {run_log.get('model')!r}, the "
                               f"manifest is {model!r}")
    dev = (run_log or {}).get("device") or device or "unknown"
    with StoreWriter(out_path, "device", manifest, device=dev,
                     dump_dir=str(dump_dir)) as writer:
        for dump in dumps:
            _ingest_image(writer, manifest, dump, dump_dir, report, layout=layout, dtype=dtype,
                          images=image_paths)
            report.images.append(dump.key)
            writer.flush()
        run = {}
        if run_log:
            for key, value in run_log.items():
                if key != "images":
                    run[key] = value
            run["run_log"] = str(run_path)
        predictions = ours.get("predictions") or []
        if ours.get("compile_s"):
            run["compile_s"] = ours["compile_s"][-1]
        if predictions:
            run["console_predictions"] = predictions
            _console_fallback(writer, dumps, predictions, report)
        run["ignored_files"] = report.ignored
        run["ingest_warnings"] = report.warnings
        writer.set_run(**run)
        writer.set_attrs(layout_option=layout, dtype_option=dtype,
                         layout_rule_files=report.layout_rule)
    return report


def _console(dump_dir: Path, console_log, warnings: list) -> dict:
    paths = [Path(console_log)] if console_log else \
        sorted([*dump_dir.glob("*.log"), *dump_dir.glob("console*.txt")])
    merged = {}
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            warnings.append(f"{path}: cannot read the console log ({exc})")
            continue
        for model, data in parse_console_log(text).items():
            slot = merged.setdefault(model, {"compile_s": [], "predictions": []})
            slot["compile_s"] += data["compile_s"]
            slot["predictions"] += data["predictions"]
    return merged


def _console_fallback(writer, dumps, predictions, report):
    """Attach console predictions to images that have no top-5 from a run log."""
    without = [d for d in dumps if "top5" not in d.meta]
    if not without:
        return
    if len(predictions) == len(dumps) or (len(predictions) >= 1 and len(dumps) == 1):
        chosen = predictions[-len(dumps):] if len(dumps) > 1 else [predictions[-1]]
        for dump, preds in zip(dumps, chosen):
            if "top5" not in dump.meta:
                writer.image(dump.key, top5=preds, top5_source="console log")
    else:
        report.warnings.append(
            f"console log holds {len(predictions)} prediction line(s) for {len(dumps)} image(s); "
            "not attached to images (kept in /run console_predictions)")
