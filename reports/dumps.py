"""Dump folders (``.floats`` files) and stores as sources of one tensor; the ``compare`` table.

Dump folder layouts:

* Forge (device): ``<model>-<tensor>.floats``, raw little-endian float32 HWC, no header, plus
  ``shapes-<model>.json`` = {file name: [W, H, C, N]};
* the original Keras side (``test_classifier.py``): same files plus ``shapes.json`` =
  {file name: [H, W, C, 1] or [N, 1]}.

:func:`compare_dirs` replaces the original ``check_error.py``: files with the same base name are
compared flat (both sides are HWC without padding); differing sizes are reported, not crashed on.
"""
import json
from pathlib import Path

import numpy as np

from reports import fmt


class DumpError(ValueError):
    """A dump file, folder or store that cannot be read; the message names it."""


def read_floats(path) -> np.ndarray:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DumpError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) % 4:
        raise DumpError(f"{path}: {len(raw)} bytes is not a whole number of float32 values")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def load_shapes(folder) -> dict:
    """{file name: (H, W, C) or None} from every shapes json in ``folder`` (Forge and Keras)."""
    folder = Path(folder)
    shapes = {}
    for path in sorted(folder.glob("shapes*.json")):
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DumpError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            continue
        forge = path.name != "shapes.json"          # shapes-<model>.json: [W, H, C, N]
        for name, dims in data.items():
            shapes[name] = _hwc_shape(dims, forge)
    return shapes


def _hwc_shape(dims, forge: bool):
    if not isinstance(dims, list) or not all(isinstance(d, int) for d in dims):
        return None
    if forge and len(dims) == 4:
        w, h, c, _n = dims
        return (h, w, c)
    if not forge and len(dims) == 4:
        h, w, c, _one = dims
        return (h, w, c)
    if len(dims) == 3:                              # [A, B, 1] of a 3-D Keras activation
        return (dims[0], dims[1], dims[2])
    if len(dims) == 2:                              # [N, 1]
        return (1, 1, dims[0] * dims[1])
    return None


def _reshape(flat, shape, single: bool = True):
    """Flat HWC → (H, W, C) when the shape fits (first image of N); else 1×1×size."""
    if shape:
        h, w, c = shape
        per_image = h * w * c
        if per_image and flat.size % per_image == 0 and flat.size >= per_image:
            return flat[:per_image].reshape(h, w, c) if single else flat.reshape(-1, h, w, c)
    return flat.reshape(1, 1, -1)


def is_store(path) -> bool:
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def load_tensor(source, tensor: str, image: str = None):
    """(H×W×C array, label) of ``tensor`` from a store, a dump folder or a ``.floats`` file."""
    source = Path(source)
    if is_store(source):
        from stores.store import Store, StoreError

        try:
            store = Store(source)
        except StoreError as exc:
            raise DumpError(str(exc)) from None
        with store:
            images = store.images()
            if not images:
                raise DumpError(f"{source}: the store holds no images")
            key = image if image is not None else images[0]
            try:
                data, status, reason = store.tensor(key, tensor)
            except KeyError as exc:
                raise DumpError(exc.args[0]) from None
            if data.size == 0:
                raise DumpError(f"{source}: tensor {tensor!r} of image {key!r} has no data "
                                f"(status {status}: {reason})")
            kind = store.attrs.get("kind", "store")
            who = store.attrs.get("device") if kind == "device" else "Keras"
            from reports.plots import as_hwc

            return as_hwc(data), f"{kind} ({who}), {source.name}, image {key}"
    if source.is_dir():
        candidates = sorted(p for p in source.glob("*.floats")
                            if p.stem == tensor or p.stem.endswith("-" + tensor))
        exact = [p for p in candidates if p.stem == tensor]
        if exact:
            candidates = exact
        if not candidates:
            raise DumpError(f"{source}: no dump of tensor {tensor!r} "
                            f"(looked for <model>-{tensor}.floats and {tensor}.floats)")
        if len(candidates) > 1:
            raise DumpError(f"{source}: several dumps match tensor {tensor!r}: "
                            f"{', '.join(p.name for p in candidates)}; pass the file itself")
        path = candidates[0]
        return _reshape(read_floats(path), load_shapes(source).get(path.name)), \
            f"{source.name}/{path.name}"
    if source.is_file():
        return _reshape(read_floats(source), load_shapes(source.parent).get(source.name)), \
            source.name
    raise DumpError(f"{source}: no such store, dump folder or .floats file")


# -- compare (check_error.py) -------------------------------------------------------------
def _side_stats(a):
    if a is None or a.size == 0:
        return None, None, None
    with np.errstate(all="ignore"):
        return float(np.min(a)), float(np.mean(a, dtype=np.float64)), float(np.max(a))


def compare_arrays(a, b) -> dict:
    """Flat comparison: max/mean abs difference, relative error ||a − b||₂ / ||a||₂, sides' stats."""
    row = {"size_a": int(a.size), "size_b": int(b.size)}
    row["min_a"], row["avg_a"], row["max_a"] = _side_stats(a)
    row["min_b"], row["avg_b"], row["max_b"] = _side_stats(b)
    if a.size != b.size:
        row.update(status="size mismatch", max_abs=None, mean_abs=None, rel_error=None)
        return row
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):
        d = np.abs(a64 - b64)
        row["max_abs"] = float(d.max()) if d.size else 0.0
        row["mean_abs"] = float(d.mean()) if d.size else 0.0
        norm = float(np.linalg.norm(a64))
        diff_norm = float(np.linalg.norm(a64 - b64))
    row["rel_error"] = diff_norm / norm if norm > 0 else (0.0 if diff_norm == 0 else float("inf"))
    bad = int(np.count_nonzero(~np.isfinite(a)) + np.count_nonzero(~np.isfinite(b)))
    row["status"] = f"{bad} NaN/Inf" if bad else "ok"
    return row


def compare_dirs(dir_a, dir_b) -> list:
    """One row per base name found in either folder (or for two files), sorted by name."""
    dir_a, dir_b = Path(dir_a), Path(dir_b)
    for p in (dir_a, dir_b):
        if not p.exists():
            raise DumpError(f"{p}: no such dump folder or .floats file")
    if dir_a.is_file() and dir_b.is_file():
        pairs = {dir_a.name if dir_a.name == dir_b.name else f"{dir_a.name} ↔ {dir_b.name}":
                 (dir_a, dir_b)}
    elif dir_a.is_dir() and dir_b.is_dir():
        files_a = {p.name: p for p in dir_a.glob("*.floats")}
        files_b = {p.name: p for p in dir_b.glob("*.floats")}
        pairs = {name: (files_a.get(name), files_b.get(name))
                 for name in set(files_a) | set(files_b)}
    else:
        raise DumpError(f"{dir_a}, {dir_b}: compare two dump folders or two .floats files")
    rows = []
    for name in sorted(pairs):
        pa, pb = pairs[name]
        row = {"file": name}
        if pa is None or pb is None:
            present = pa if pa is not None else pb
            stats = _side_stats(read_floats(present))
            side = "a" if pa is not None else "b"
            row.update({"size_" + side: int(read_floats(present).size),
                        f"min_{side}": stats[0], f"avg_{side}": stats[1], f"max_{side}": stats[2],
                        "status": "only in A" if pa is not None else "only in B"})
        else:
            try:
                row.update(compare_arrays(read_floats(pa), read_floats(pb)))
            except DumpError as exc:
                row["status"] = f"unreadable: {exc}"
        rows.append(row)
    return rows


COMPARE_COLUMNS = ("file", "size A", "size B", "max abs", "mean abs", "rel error",
                   "min A", "avg A", "max A", "min B", "avg B", "max B", "status")


def compare_table(rows) -> str:
    out = []
    for r in rows:
        out.append({
            "file": fmt.code(r["file"]),
            "size A": fmt.integer(r.get("size_a")), "size B": fmt.integer(r.get("size_b")),
            "max abs": fmt.err(r.get("max_abs")), "mean abs": fmt.err(r.get("mean_abs")),
            "rel error": fmt.err(r.get("rel_error")),
            "min A": fmt.num(r.get("min_a")), "avg A": fmt.num(r.get("avg_a")),
            "max A": fmt.num(r.get("max_a")), "min B": fmt.num(r.get("min_b")),
            "avg B": fmt.num(r.get("avg_b")), "max B": fmt.num(r.get("max_b")),
            "status": fmt.cell(r.get("status")),
        })
    align = ["left"] + ["right"] * 11 + ["left"]
    return fmt.table(out, COMPARE_COLUMNS, align)
