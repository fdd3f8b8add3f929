"""Ingest a device dump folder into a store keyed by the manifest's Forge tensor names.

**What the phone writes.**  The Forge fork's ``DocumentDirectoryDumper`` writes
``<model>-<tensor>.floats`` and ``shapes-<model>.json`` flat into the app's Documents folder, one
run at a time (a second run overwrites the first).  So one copied Documents folder holds one
image's run, next to whatever else the app saved there.  ``DIR`` may be:

1. **one image's run, flat**: ``DIR/<model>-*.floats``, ``DIR/shapes-<model>.json``, optionally
   ``DIR/run-<model>.json`` and a console log.  The image is named by ``image``/``images`` when
   exactly one is given (``--image KEY``/``--images FILE``), else by the run log's ``"image"``,
   else by the console log, else it is an error asking which image it is;
2. **one folder per image**: ``DIR/<image>/...`` as in 1, each folder named after its image (the
   file stem ``dog`` or the file name ``dog.jpg``); a run log or console log inside wins over the
   folder name;
3. **copied Documents folders**: ``DIR/<run>/Documents/...`` (or ``DIR/<run>/AppData/Documents/``,
   Xcode's "Download Container"), one image's run each, named by its run log or console log, or
   by ``<run>`` when that is one of ``images``.

Anything else is one :class:`IngestError` saying what was found, what is expected and the fix:
dumps at the top *and* in sub-folders, two folders holding the same image, a sub-folder of
another model's dumps, dumps nested deeper than the layouts above, an empty folder, a folder
with only a shapes json, a run log at the top of a folder of image folders.

**Run log** ``run-<model>.json`` (one per run folder; the reference device writes it, a phone app
should too)::

    {"model": "resnet_50",                  # the dump prefix (the builder's name)
     "image": "dog.jpg",                    # the image file the run used
     "manifest_sha256": "...",              # core.manifest.manifest_hash of the manifest the app
                                            #   was built from (detects stale conversions)
     "device": "iPhone 12 Pro", "ios_version": "17.4",
     "latency_s": [0.0123, 0.0119, ...],    # seconds per timed run (a single number is accepted)
     "top5": [{"index": 717, "probability": 0.87, "label": "pickup"}, ...],
     "warnings": [...]}                     # optional

**Console log** (``*.log`` or ``console*.txt`` in the run folder, or ``console_log``): the fork's
model tests print ``Compiling took <s> seconds``, ``Successfully compiled model <name>`` and
``predictions:[(label: "...", probability: p, index: i), ...]`` (a fallback for the top-5), but
never the image.  Two things name the image reliably: a line ``image: <file name>`` that the app
prints (for example ``print("image: \\(testImageName)")`` in ``testModel``), and the name of one of
the fork's own ModelTests (``ForgeTests.ModelTests.testResnet50(debug:)``), whose images are fixed
in ModelTests.swift (:data:`MODEL_TEST_IMAGES`).  The last run of the manifest's model in the log
counts (the Documents folder holds the last run's dumps).

**Integrity before numerics**, per tensor (see :mod:`stores.store`): ``missing``, ``truncated``
and ``oversized`` (the file size fits no accepted layout), ``shape_mismatch`` (the shapes json
describes another architecture), ``wrong_model`` (another model's prefix), ``nan_inf`` (values
kept), ``stale_conversion`` (the run log's manifest hash is not this manifest's: every tensor of
that run), ``not_compared`` (``__Input__``, ``compare: false``, tensors Forge writes no file for).
Every reason names the file and what is wrong with it; ``stores.store.FIXES`` holds the fix of each
status, which the summary prints once per status and the judge with each data problem.

**Layout rule** of one file (its size and the manifest's H, W, C decide):

1. ``interleaved-float32``: ``[y][x][c]`` float32, H·W·C·4 bytes (Forge's dumper,
   ``toFloatArrayChannelsInterleaved``);
2. ``padded-float32``: ``[slice][y][x][4]`` float32, H·W·ceil(C/4)·4·4 bytes (``toFloatArray``;
   the padding components of the last slice are dropped);
3. ``interleaved-float16`` and 4. ``padded-float16``: the same with 2-byte halves.

For C < 3 the padded layout is the interleaved one (MPS keeps 1 or 2 components per pixel).  A
size that fits exactly one candidate decides.  When C % 4 == 0 the interleaved and padded sizes
are equal: the file is read as interleaved (Forge's dumper), the dataset's ``layout_note`` says
so; ``layout="padded"`` (``--layout padded``) reads them as padded.  ``dtype`` (``--dtype``)
restricts the candidates to one element type.
"""
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional
from pathlib import Path

import numpy as np

from core.manifest import TensorEntry, as_manifest, load_manifest, manifest_hash
from core.preprocessing import PREPROCESSING_TENSORS
from imagesets.images import IMAGE_EXTENSIONS, ImageError, image_size, list_images
from stores.store import StoreWriter

LAYOUTS = ("auto", "interleaved", "padded")
DTYPES = ("auto", "float32", "float16")
# Folders a copied app container puts between a run's label and its dumps.
WRAPPERS = (("Documents",), ("AppData", "Documents"))
CONSOLE_GLOBS = ("*.log", "console*.txt")
# The fork's ModelTests.swift runs each of its tests on one fixed image.
MODEL_TEST_IMAGES = {
    "testVGG16": "final1-224.jpg", "testResnet50": "final1-224.jpg",
    "testMobileNet": "final1-224.jpg", "testInceptionV3": "final1-299.jpg",
    "testInceptionResnetV2": "final1-299.jpg", "testXception": "final1-299.jpg",
}
EXPECTED_LAYOUTS = (
    "expected one of: DIR/<model>-<tensor>.floats (one image's run, flat, as the app's Documents "
    "folder holds it); DIR/<image>/<model>-<tensor>.floats (one folder per image, named after "
    "it); DIR/<run>/Documents/... or DIR/<run>/AppData/Documents/... (copied Documents folders "
    "or Xcode app containers, one image's run each)")
RERUN = "re-run the app with this build (debug: true) and copy the Documents folder again"
UNKNOWN_DEVICE = "unknown"       # the device of a run whose run log (and the caller) names none


class IngestError(ValueError):
    """A dump folder that cannot be ingested at all; the text names the folder or file and the
    fix."""


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
        usable = size - size % 4
        flat = np.frombuffer(raw[:usable], dtype="<f4").astype(np.float32)
        restricted = ("" if layout == "auto" and dtype == "auto"
                      else f" (restricted by layout={layout}, dtype={dtype})")
        if size < h * w * c * 4:
            return Decoded(flat, "truncated", (
                f"{file}: {size} bytes, shorter than {h}x{w}x{c} float32 and no other accepted "
                f"layout (expected {expected}){restricted}: the copy is incomplete"))
        return Decoded(flat, "oversized", (
            f"{file}: {size} bytes, longer than {h}x{w}x{c} float32 and no other accepted "
            f"layout (expected {expected}){restricted}: the file comes from another build of "
            "the network"))
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

_TEST_RE = re.compile(r"\.ModelTests\.(test\w+)\(debug:\)\s*$")
_IMAGE_RE = re.compile(r"^\s*image:\s*\"?([^\"]+?)\"?\s*$")
_MODEL_RE = re.compile(r"Successfully compiled model\s+(\S+)")
_COMPILE_RE = re.compile(r"Compiling took\s+([-+0-9.eE]+)\s+seconds")
_PRED_RE = re.compile(r"predictions:\s*\[(.*)\]")
_ENTRY_RE = re.compile(r'\(\s*label:\s*"((?:[^"\\]|\\.)*)"\s*,\s*probability:\s*([-+0-9.eE]+|nan|inf)'
                       r'\s*,\s*index:\s*(\d+)\s*\)')


def parse_console_log(text: str) -> list:
    """Forge model-test console output → one dict per model run, in order:
    ``{"model", "test", "image", "compile_s", "predictions": [[{label, probability, index}]]}``.

    A run starts at ``Successfully compiled model <name>``; the test-name line, an ``image:`` line
    and ``Compiling took`` printed before it belong to it, and so does an ``image:`` line printed
    after it but before its predictions.  ``image`` is the explicit line's file name, else the
    fixed image of a fork ModelTests test (:data:`MODEL_TEST_IMAGES`), else None.
    """
    runs = []
    pending = {"test": None, "image": None, "compile_s": None}
    current = None
    for line in text.splitlines():
        m = _TEST_RE.search(line)
        if m:
            pending = {"test": m.group(1), "image": None, "compile_s": None}
            current = None
            continue
        m = _IMAGE_RE.match(line)
        if m:
            if current is not None and not current["predictions"]:
                current["image"] = m.group(1)
            else:
                pending["image"] = m.group(1)
            continue
        m = _COMPILE_RE.search(line)
        if m:
            pending["compile_s"] = float(m.group(1))
            continue
        m = _MODEL_RE.search(line)
        if m:
            current = {"model": m.group(1), "predictions": [], **pending}
            runs.append(current)
            pending = {"test": None, "image": None, "compile_s": None}
            continue
        m = _PRED_RE.search(line)
        if m:
            if current is None:
                current = {"model": None, "predictions": [], **pending}
                runs.append(current)
            current["predictions"].append(
                [{"label": lab.replace('\\"', '"'), "probability": float(p), "index": int(i)}
                 for lab, p, i in _ENTRY_RE.findall(m.group(1))])
    for run in runs:
        if run["image"] is None and run["test"] in MODEL_TEST_IMAGES:
            run["image"] = MODEL_TEST_IMAGES[run["test"]]
    return runs


def _console_run(paths, model: str, warnings: list):
    """The last run of ``model`` in the console log(s) ``paths``, or None."""
    ours = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            warnings.append(f"{path}: cannot read the console log ({exc}); ignored")
            continue
        ours += [dict(run, log=str(path)) for run in parse_console_log(text)
                 if run["model"] in (model, None)]
    named = [run for run in ours if run["model"] == model]
    return (named or ours or [None])[-1]


# -- the folder: runs and their images -------------------------------------------------------

@dataclass
class DumpRun:
    """One image's run: the folder holding its dumps and how its image is known."""
    folder: Path
    label: Path = None              # DIR's sub-folder it came from (None: DIR itself is the run)
    key: str = ""                   # the image key (file stem) the store uses
    image: str = ""                 # the image as named (a file name, or the stem)
    named_by: str = ""              # "--image", "--images", "the run log", "the console log",
                                    # "the folder name"
    run_log: dict = field(default_factory=dict)
    run_log_path: Path = None
    console: dict = None            # the console log's last run of the model
    warnings: list = field(default_factory=list)

    @property
    def wrapped(self) -> bool:
        return self.label is not None and self.folder != self.label


def _image_key(name: str) -> str:
    """A file name or stem → the image key (``dog.jpg`` → ``dog``, ``final1-224`` stays)."""
    path = Path(str(name))
    return path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else path.name


def _hidden(name: str) -> bool:
    """Finder's and unzip's leftovers (``.DS_Store``, ``._x.floats``, ``__MACOSX``) are not data."""
    return name.startswith(".") or name == "__MACOSX"


def _files(folder: Path, pattern: str) -> list:
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not _hidden(p.name))


def _has_dumps(folder: Path) -> bool:
    return bool(_files(folder, "*.floats") or _files(folder, "shapes*.json"))


def _visible_dirs(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))


def _run_in(child: Path, dump_dir: Path):
    """The run folder inside DIR's sub-folder ``child`` (itself or a wrapper), or None."""
    found = [c for c in [child, *(child.joinpath(*w) for w in WRAPPERS)]
             if c.is_dir() and _has_dumps(c)]
    if len(found) > 1:
        raise IngestError(f"{child}: dumps both in {found[0]} and in {found[1]}; one folder holds "
                          f"one image's run: move one of them to a folder of its own in {dump_dir}")
    deeper = sorted(p for p in child.rglob("*.floats") if p.parent not in found
                    and not any(_hidden(part) for part in p.relative_to(child).parts))
    if deeper:
        holder = deeper[0].parent
        raise IngestError(
            f"{deeper[0]}: dumps nested deeper than expected in {dump_dir}; {EXPECTED_LAYOUTS}; "
            f"point at {holder.parent} instead (the folder that holds the run folders), or "
            f"move {holder} up into {dump_dir}")
    return found[0] if found else None


def _run_folders(dump_dir: Path) -> list:
    """[(run folder, label or None)] of DIR by the module's layouts; IngestError otherwise."""
    subs = []
    for child in _visible_dirs(dump_dir):
        run = _run_in(child, dump_dir)
        if run is not None:
            subs.append((run, child))
    if _has_dumps(dump_dir):
        if subs:
            names = ", ".join(label.name for _, label in subs[:4]) + \
                (" ..." if len(subs) > 4 else "")
            raise IngestError(
                f"{dump_dir}: dumps at the top (one image's run) AND in sub-folders ({names}); "
                f"{EXPECTED_LAYOUTS}; move the top-level dump files into a folder named after "
                "their image, or point at one run folder")
        return [(dump_dir, None)]
    if subs:
        return subs
    entries = sorted(p.name for p in dump_dir.iterdir() if not _hidden(p.name))
    if not entries:
        raise IngestError(f"{dump_dir}: the folder is empty; copy the app's Documents folder into "
                          "it after a debug run (debug: true), or run `python -m device_pull "
                          "emulate`")
    raise IngestError(
        f"{dump_dir}: no .floats dumps here or in its sub-folders (found: "
        f"{', '.join(entries[:8])}{' ...' if len(entries) > 8 else ''}); {EXPECTED_LAYOUTS}; "
        "run the app with debug: true and copy its Documents folder")


def _read_json(path: Path, warnings: list):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.append(f"{path}: unreadable JSON ({exc}); ignored")
        return None


def _read_run_files(run: DumpRun, model: str, console_log):
    """The run's own run log and console log."""
    path = run.folder / f"run-{model}.json"
    if path.is_file():
        log = _read_json(path, run.warnings)
        if isinstance(log, dict):
            run.run_log, run.run_log_path = log, path
            if log.get("model") not in (None, model):
                run.warnings.append(f"{path}: run log of model {log.get('model')!r}, the "
                                    f"manifest is {model!r}")
        elif log is not None:
            run.warnings.append(f"{path}: not a JSON object; ignored")
    else:
        others = [p.name for p in _files(run.folder, "run-*.json")]
        if others:
            run.warnings.append(f"{run.folder}: {', '.join(others)} belong(s) to another model "
                                f"(expected run-{model}.json); not read")
    logs = [Path(console_log)] if console_log else \
        sorted({p for pattern in CONSOLE_GLOBS for p in _files(run.folder, pattern)})
    run.console = _console_run(logs, model, run.warnings) if logs else None


def _dump_prefixes(folder: Path, manifest) -> list:
    """Model names the folder's files carry (shapes-/run- json, ``<prefix>-<tensor>.floats``)."""
    prefixes = set()
    for pattern, cut in (("shapes-*.json", "shapes-"), ("run-*.json", "run-")):
        prefixes |= {p.name[len(cut):-len(".json")] for p in _files(folder, pattern)}
    suffixes = [f"-{t.name}.floats" for t in manifest.tensors]
    for path in _files(folder, "*.floats"):
        for suffix in suffixes:
            if path.name.endswith(suffix) and len(path.name) > len(suffix):
                prefixes.add(path.name[: -len(suffix)])
                break
    return sorted(prefixes)


def _check_run_files(run: DumpRun, manifest, dump_dir: Path):
    """A run folder needs .floats; in a folder of runs, they must be the manifest's model's."""
    model = manifest.name
    floats = {p.name for p in _files(run.folder, "*.floats")}
    if not floats:
        shapes = [p.name for p in _files(run.folder, "shapes*.json")]
        raise IngestError(
            f"{run.folder}: only {', '.join(shapes)}, no .floats dumps: the app wrote the shapes "
            f"but no tensor dumps, or the copy missed them; {RERUN}")
    if run.label is None:
        return                      # one flat run: another model's files are recorded per tensor
    ours = {t.dump_file for t in manifest.tensors if t.dump_file}
    if floats & ours or (run.folder / f"shapes-{model}.json").is_file():
        return
    prefixes = [p for p in _dump_prefixes(run.folder, manifest) if p != model]
    what = (f"dumps of model {', '.join(repr(p) for p in prefixes)}" if prefixes
            else f"{len(floats)} .floats file(s) none of which is a dump of this manifest")
    raise IngestError(
        f"{run.label}: {what}, not of {model!r} (expected {model}-<tensor>.floats and "
        f"shapes-{model}.json); remove the folder from {dump_dir}, or ingest it with "
        "that model's manifest")


def _name(run: DumpRun, name: str, by: str):
    run.image, run.key, run.named_by = Path(str(name)).name, _image_key(name), by


def _name_runs(runs: list, dump_dir: Path, model: str, given: list, image):
    if image and len(runs) > 1:
        labels = ", ".join(run.label.name for run in runs)
        raise IngestError(f"--image {image}: {dump_dir} holds {len(runs)} runs ({labels}); "
                          "--image names the image of a single flat run; drop it (each run "
                          "folder names its own image)")
    explicit = (image, "--image") if image else \
        ((given[0].name, "--images") if len(given) == 1 else None)
    given_keys = {_image_key(p.name): p for p in given}
    for run in runs:
        logged = run.run_log.get("image")
        logged = logged if isinstance(logged, str) and logged.strip() else None
        console = (run.console or {}).get("image")
        single_unlabelled = len(runs) == 1 and (run.label is None or run.wrapped)
        if single_unlabelled and explicit:
            if logged and _image_key(logged) != _image_key(explicit[0]):
                raise IngestError(
                    f"{run.run_log_path} names image {logged!r}, {explicit[1]} says "
                    f"{explicit[0]!r}; pass the image the app ran with (or correct the run log's "
                    "\"image\")")
            if console and _image_key(console) != _image_key(explicit[0]):
                run.warnings.append(f"{run.console['log']}: the console log names image "
                                    f"{console!r}, {explicit[1]} says {explicit[0]!r}; "
                                    f"{explicit[1]} is used")
            _name(run, explicit[0], explicit[1])
        elif logged:
            _name(run, logged, "the run log")
        elif console:
            _name(run, console, "the console log")
        elif run.label is not None and not run.wrapped:
            _name(run, run.label.name, "the folder name")
        elif run.wrapped and _image_key(run.label.name) in given_keys:
            _name(run, given_keys[_image_key(run.label.name)].name, "the folder name")
        else:
            raise IngestError(_unnamed(run, dump_dir, model, given))
        if run.label is not None and not run.wrapped and run.named_by != "the folder name" and \
                _image_key(run.label.name) != run.key:
            run.warnings.append(f"{run.label}: the folder name differs from image {run.image!r} "
                                f"named by {run.named_by}; {run.named_by} is used")


def _unnamed(run: DumpRun, dump_dir: Path, model: str, given: list) -> str:
    nothing = (f"nothing names its image (no run-{model}.json with \"image\", no console log "
               "line 'image: FILE' or fork ModelTests test name)")
    if run.label is None:
        choose = (f"--images gives {len(given)} images: say which one the app ran with "
                  "--images FILE" if given else "say which image with --images FILE")
        return f"{dump_dir} holds one image's dumps, but {nothing}; {choose}"
    return (f"{run.folder} holds one image's dumps, but {nothing} and {run.label.name!r} is not "
            f"an image of --images; rename {run.label} after its image (e.g. "
            f"{dump_dir / 'dog'} for dog.jpg) or put the run log in {run.folder}")


def _check_unique(runs: list, dump_dir: Path):
    seen = {}
    for run in runs:
        other = seen.setdefault(run.key, run)
        if other is not run:
            raise IngestError(
                f"{dump_dir}: {other.folder} (named by {other.named_by}) and {run.folder} "
                f"(named by {run.named_by}) both hold image {run.key!r}; keep one run per "
                "image: remove one of the folders or rename it after its own image")


def dump_images(dump_dir, manifest, images=None, *, image=None, console_log=None) -> list:
    """The runs a dump folder holds, each with its image: a list of :class:`DumpRun`
    (``.key``, ``.folder``, ``.image``, ``.named_by``), sorted by image key as the golden side.

    ``images``: image folders/files — one names a flat folder's image; a copied Documents
    folder's label may be one of them.  ``image``: the key or file name of a flat folder's
    image.  ``console_log``: the console log of a single run (default: the run folder's own).
    Raises :class:`IngestError` for every layout the module docstring does not accept.
    """
    manifest = as_manifest(manifest)
    model = manifest.name
    dump_dir = Path(dump_dir)
    if not dump_dir.is_dir():
        raise IngestError(f"{dump_dir}: no such dump folder; copy the app's Documents folder "
                          "(or `python -m device_pull usb`) first")
    try:
        given = list_images(images) if images else []
    except ImageError as exc:
        raise IngestError(f"--images: {exc}") from None
    runs = [DumpRun(folder, label) for folder, label in _run_folders(dump_dir)]
    if runs[0].label is not None:
        top_logs = [p.name for p in _files(dump_dir, "run-*.json")]
        if top_logs:
            raise IngestError(
                f"{dump_dir / top_logs[0]}: a run log at the top of a folder of image folders "
                "(the layout of an older `device_pull emulate`); each run log belongs in its "
                "image's folder: run `python -m device_pull emulate` again, or move it there")
        if console_log and len(runs) > 1:
            raise IngestError(f"--console {console_log}: {dump_dir} holds {len(runs)} runs; put "
                              "each run's console log in its own folder instead")
    for run in runs:
        _check_run_files(run, manifest, dump_dir)
        _read_run_files(run, model, console_log)
    _name_runs(runs, dump_dir, model, given, image)
    _check_unique(runs, dump_dir)
    return sorted(runs, key=lambda run: run.key)


def dump_image_files(dump_dir, manifest, images=None, search=()) -> list:
    """The image files of a dump folder's runs, found by name in ``images`` then in the
    ``search`` folders, plus ``images`` themselves (sorted, as :func:`list_images`).

    The validation suite runs Keras on exactly these; an image the dump names that is in
    neither place is an :class:`IngestError` naming the run folder and the fix.
    """
    manifest = as_manifest(manifest)
    runs = dump_images(dump_dir, manifest, images)
    try:
        given = list_images(images) if images else []
    except ImageError as exc:
        raise IngestError(f"--images: {exc}") from None
    pool = {}
    for folder in reversed([Path(s) for s in search if Path(s).is_dir()]):
        pool.update({_image_key(p.name): p for p in list_images(folder)})
    pool.update({_image_key(p.name): p for p in given})
    found = {str(p): p for p in given}
    for run in runs:
        path = pool.get(run.key)
        if path is None:
            where = ", ".join(str(s) for s in search) or "no built-in folder"
            raise IngestError(
                f"{run.folder}: image {run.image!r} (named by {run.named_by}) is neither among "
                f"--images nor in the built-in sample images ({where}); pass its file with "
                "--images FILE")
        found[str(path)] = path
    try:
        return list_images(list(found.values()))
    except ImageError as exc:
        raise IngestError(f"{dump_dir}: {exc}") from None


# -- one run ---------------------------------------------------------------------------------

@dataclass
class IngestReport:
    out: str
    model: str
    images: list = field(default_factory=list)
    named_by: dict = field(default_factory=dict)   # image -> what named it
    statuses: Counter = field(default_factory=Counter)
    problems: list = field(default_factory=list)   # (image, tensor, status, reason)
    ignored: dict = field(default_factory=dict)    # image -> [file names]
    warnings: list = field(default_factory=list)
    layout_rule: int = 0                           # files read by the C % 4 == 0 rule
    layouts: Counter = field(default_factory=Counter)


def _load_shapes(folder: Path, model: str, warnings: list) -> dict:
    for path in (folder / f"shapes-{model}.json", folder / "shapes.json"):
        if path.is_file():
            shapes = _read_json(path, warnings)
            if shapes is not None and not isinstance(shapes, dict):
                warnings.append(f"{path}: not a {{file: [W, H, C, N]}} object; ignored")
                shapes = None
            return shapes or {}
    others = _files(folder, "shapes-*.json")
    if others:
        warnings.append(f"{others[0]}: shapes json of another model (expected "
                        f"shapes-{model}.json); shapes are not checked")
    else:
        warnings.append(f"{folder}: no shapes-{model}.json; shapes come from the manifest only")
    return {}


def _forge_hwc(entry):
    shape = entry.shape
    if not shape or len(shape) != 3 or any((not isinstance(s, int)) or s <= 0 for s in shape):
        return None
    return tuple(shape)


def _latencies(value) -> list:
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values if isinstance(v, (int, float)) and v > 0]


def _image_attrs(run: DumpRun) -> dict:
    log = run.run_log
    attrs = {"image": run.image, "dump_dir": str(run.folder), "named_by": run.named_by}
    latencies = _latencies(log.get("latency_s"))
    if latencies:
        attrs["latency_s"] = float(np.mean(latencies))
        attrs["latency_runs_s"] = latencies
    for key in ("device", "ios_version", "manifest_sha256"):
        if log.get(key) is not None:
            attrs[key] = log[key]
    if isinstance(log.get("top5"), list) and log["top5"]:
        attrs["top5"], attrs["top5_source"] = log["top5"], "run log"
    elif run.console and run.console["predictions"]:
        attrs["top5"], attrs["top5_source"] = run.console["predictions"][-1], "console log"
    if run.console and run.console.get("compile_s") is not None:
        attrs["compile_s"] = run.console["compile_s"]
    return attrs


def _stale_reason(run: DumpRun, manifest):
    """Why the run's dumps come from another conversion than ``manifest``'s, or None: the run
    log's manifest hash when it has one, else dumps of preprocessing tensors the manifest has not
    (the ``input_scale`` of a conversion made with other preprocessing; other unknown files, such
    as an app's own debug dumps, are only reported as ignored)."""
    logged = run.run_log.get("manifest_sha256")
    if not logged:
        return _foreign_tensors_reason(run, manifest)
    ours = manifest_hash(manifest)
    if logged == ours:
        return None
    where = manifest.path or f"manifest of {manifest.name!r}"
    return (f"{run.run_log_path}: the app ran a conversion with manifest hash {str(logged)[:12]}, "
            f"{where} has {ours[:12]}: these dumps come from another conversion")


def _foreign_tensors_reason(run: DumpRun, manifest):
    known = {t.name for t in manifest.tensors}
    foreign = sorted(f"{manifest.name}-{name}.floats" for name in PREPROCESSING_TENSORS - known
                     if (run.folder / f"{manifest.name}-{name}.floats").is_file())
    if not foreign:
        return None
    shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    where = manifest.path or f"the manifest of {manifest.name!r}"
    return (f"{run.folder}: {shown} {'is a dump' if len(foreign) == 1 else 'are dumps'} of "
            f"preprocessing that {where} does not have: these dumps come from a conversion of "
            f"{manifest.name!r} with other preprocessing (--preprocessing)")


class _RunReader:
    """Reads one run folder's files tensor by tensor."""

    def __init__(self, run: DumpRun, manifest, *, layout, dtype, images):
        self.run, self.manifest, self.layout, self.dtype = run, manifest, layout, dtype
        self.model = manifest.name
        self.shapes = _load_shapes(run.folder, self.model, run.warnings)
        self.files = {p.name: p for p in _files(run.folder, "*.floats")}
        self.used = set()
        self.wanted = {e.dump_file for e in manifest.tensors if e.dump_file}
        self.image_path = images.get(run.key)
        self.layouts = Counter()
        self.layout_rule = 0
        self.run_dtype = self._run_dtype()

    def _run_dtype(self) -> str:
        """``float32`` when the run's dumps are float32 (Forge's dumper), so that a file cut to
        exactly half its size (a copy stopped at a 4 KiB block) is truncated, not float16."""
        if self.dtype != "auto":
            return self.dtype
        kinds = Counter()
        for entry in self.manifest.tensors:
            path, hwc = self.files.get(entry.dump_file or ""), _forge_hwc(entry)
            if path is None or hwc is None:
                continue
            size = path.stat().st_size
            fits = {cand[0].rsplit("-", 1)[1] for cand in candidates(*hwc) if cand[3] == size}
            if len(fits) == 1:
                kinds[fits.pop()] += 1
        return "float32" if kinds["float32"] > kinds["float16"] else "auto"

    def tensor(self, entry: TensorEntry):
        """(data or None, status, reason, extra attributes) of one manifest tensor."""
        name, dump_file = entry.name, entry.dump_file
        if not dump_file:
            return None, "not_compared", ("Forge writes no dump file for this tensor (its data "
                                          "is dumped through the tensors it collects); nothing "
                                          "to compare"), {}
        path, status, reason = self.files.get(dump_file), None, ""
        if path is None:
            path = self._other_model_file(name)
            if path is None:
                return None, "missing", f"{dump_file} not found in {self.run.folder}", {}
            prefix = path.name[: -len(f"-{name}.floats")]
            status = "wrong_model"
            reason = (f"{path}: prefix {prefix!r} is another model's, the manifest is "
                      f"{self.model!r} (expected {dump_file})")
        self.used.add(path.name)
        extra = {"file": path.name}
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return None, "missing", f"{path}: cannot read the file ({exc})", extra
        json_shape = self._json_shape(path.name)
        hwc = _forge_hwc(entry)
        if hwc is None or entry.op.provides_texture or \
                (entry.reference is not None and entry.reference.kind == "input_texture"):
            data, in_reason = _decode_input(raw, json_shape, self._input_size(), path)
            return data, status or "not_compared", reason or in_reason, extra
        if _shape_mismatch(json_shape, entry):
            dims = (int(json_shape[1]), int(json_shape[0]), int(json_shape[2]))
            dec = decode(raw, dims, str(path), layout=self.layout, dtype=self.dtype)
            status = status or "shape_mismatch"
            reason = reason or (
                f"{path}: shapes json says [W, H, C, N] = {list(json_shape)}, the manifest "
                f"says {entry.forge_shape or [hwc[1], hwc[0], hwc[2], 1]}: the dump comes "
                "from another architecture")
        else:
            dec = decode(raw, hwc, str(path), layout=self.layout, dtype=self.run_dtype)
            if dec.status != "ok" and self.run_dtype != self.dtype:
                if decode(raw, hwc, str(path), layout=self.layout).status == "ok":
                    dec.status, dec.reason = "truncated", (
                        f"{path}: {len(raw)} bytes is the float16 size of {hwc[0]}x{hwc[1]}x"
                        f"{hwc[2]}, but this run's other dumps are float32 (as Forge's dumper "
                        "writes): the copy was cut short, unless the app really wrote "
                        "float16 (then ingest with --dtype float16)")
            if status is None:
                status, reason = dec.status, dec.reason
            if json_shape is None and self.shapes:
                extra["shape_note"] = f"{path.name} has no entry in the shapes json"
        if dec.layout:
            extra["layout"] = dec.layout
            self.layouts[dec.layout] += 1
        if dec.note:
            extra["layout_note"] = dec.note
            self.layout_rule += 1
        bad = _nan_inf(dec.data)
        if bad:
            nan_text = f"{path}: {bad} NaN/Inf value(s) of {dec.data.size} (kept in the data)"
            if status == "ok":
                status, reason = "nan_inf", nan_text
            else:
                reason += f"; also {bad} NaN/Inf value(s)"
        if status == "ok" and not entry.compare:
            status, reason = "not_compared", "the manifest marks this tensor compare: false"
        return dec.data, status, reason, extra

    def _other_model_file(self, name: str):
        suffix = f"-{name}.floats"
        for fname, path in self.files.items():
            if fname in self.used or fname in self.wanted or not fname.endswith(suffix):
                continue
            prefix = fname[: -len(suffix)]
            if prefix and prefix != self.model and not prefix.startswith(self.model + "-"):
                return path
        return None

    def _json_shape(self, file: str):
        """The shapes json entry of ``file`` as a list of ints, or None (warned when malformed)."""
        value = self.shapes.get(file)
        if value is None:
            return None
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            return [int(v) for v in value]
        self.run.warnings.append(f"shapes json entry of {file} is {value!r}, not [W, H, C, N]; "
                                 "ignored")
        return None

    def _input_size(self):
        """(W, H) of the run's image file, if known (to shape ``__Input__``)."""
        if self.image_path is None:
            return None
        try:
            return image_size(self.image_path)
        except ImageError:
            return None

    def ignored(self) -> list:
        return sorted(set(self.files) - self.used)


def _shape_mismatch(json_shape, entry) -> bool:
    if not json_shape or len(json_shape) < 3:
        return False
    if any(int(s) <= 0 for s in json_shape[:3]):
        return False
    forge = entry.forge_shape
    if forge and len(forge) >= 3:
        expect = [int(s) for s in forge[:3]]
    else:
        h, w, c = entry.shape
        expect = [w, h, c]
    return [int(s) for s in json_shape[:3]] != expect


def _decode_input(raw: bytes, json_shape, size, path: Path):
    """``__Input__``: raw B, G, R bytes as float32 at the original image size (shape -1 in json)."""
    flat = np.frombuffer(raw[: len(raw) - len(raw) % 4], dtype="<f4").astype(np.float32)
    dims = None
    if json_shape and len(json_shape) >= 3 and all(int(s) > 0 for s in json_shape[:3]):
        dims = (int(json_shape[1]), int(json_shape[0]), int(json_shape[2]))
    elif size is not None:
        dims = (size[1], size[0], 3)
    if dims and flat.size == dims[0] * dims[1] * dims[2] and len(raw) % 4 == 0:
        return flat.reshape(dims), (f"{path.name}: the input texture (raw B, G, R bytes at the "
                                    "image's original size); kept for reference, not compared")
    return flat, (f"{path}: the input texture (raw B, G, R bytes); its shape is not recorded "
                  "([-1, -1, -1, 1]) and the image was not found, so it is kept flat; pass "
                  "--images to reshape it; not compared")


@dataclass
class RunRecords:
    """One run folder read tensor by tensor: ``records`` = ``{tensor: (data, status, reason,
    extra)}``; ``attrs`` = the image's attributes (image, run log facts, top-5, ...)."""
    records: dict
    attrs: dict
    stale: Optional[str]
    ignored: list
    layouts: Counter
    layout_rule: int


def read_run(run: DumpRun, manifest, *, layout="auto", dtype="auto", images=None) \
        -> RunRecords:
    """Every manifest tensor of one run folder, with the statuses the store records."""
    manifest = as_manifest(manifest)
    reader = _RunReader(run, manifest, layout=layout, dtype=dtype, images=images or {})
    stale = _stale_reason(run, manifest)
    records = {}
    for entry in manifest.tensors:
        data, status, reason, extra = reader.tensor(entry)
        if stale:
            extra["status_before_stale"] = status
            status, reason = "stale_conversion", stale
        records[entry.name] = (data, status, reason, extra)
    return RunRecords(records, _image_attrs(run), stale, reader.ignored(), reader.layouts,
                      reader.layout_rule)


def records_of_dumps(manifest, dumps: dict) -> dict:
    """The reference device's in-memory dumps (``{file name: (array, shape)}``, as it would
    write them) as ``{tensor: (data, status, reason)}`` with the rules a phone folder's files
    get: float32 HWC values, ``missing`` without a dump, ``nan_inf`` with non-finite values."""
    manifest = as_manifest(manifest)
    out = {}
    for entry in manifest.tensors:
        name, dump_file = entry.name, entry.dump_file
        if not dump_file:
            out[name] = (None, "not_compared", "Forge writes no dump file for this tensor")
            continue
        found = dumps.get(dump_file)
        if found is None:
            out[name] = (None, "missing", f"the reference device dumped no {dump_file}")
            continue
        array, hwc = np.asarray(found[0], dtype=np.float32), _forge_hwc(entry)
        if hwc is None or entry.op.provides_texture:
            out[name] = (array, "not_compared", "the input texture; not compared")
            continue
        if array.size != int(np.prod(hwc)):
            out[name] = (array.reshape(-1), "shape_mismatch",
                         f"{dump_file}: {array.size} values, the manifest says {list(hwc)}")
            continue
        data = np.ascontiguousarray(array.reshape(hwc))
        bad = _nan_inf(data)
        status, reason = ("nan_inf", f"{dump_file}: {bad} NaN/Inf value(s) of {data.size}") \
            if bad else ("ok", "")
        if status == "ok" and not entry.compare:
            status, reason = "not_compared", "the manifest marks this tensor compare: false"
        out[name] = (data, status, reason)
    return out


def _ingest_run(writer, manifest, run: DumpRun, report: IngestReport, *, layout, dtype, images):
    read = read_run(run, manifest, layout=layout, dtype=dtype, images=images)
    writer.image(run.key, **read.attrs)
    for name, (data, status, reason, extra) in read.records.items():
        writer.write(run.key, name, data, status, reason, **extra)
        report.statuses[status] += 1
        if status not in ("ok", "not_compared"):
            report.problems.append((run.key, name, status, reason))
    if read.ignored:
        report.ignored[run.key] = read.ignored
    report.layouts.update(read.layouts)
    report.layout_rule += read.layout_rule
    writer.image(run.key, ignored_files=read.ignored, warnings=run.warnings,
                 stale_conversion=read.stale)
    report.warnings.extend(run.warnings)
    return read.stale


def run_attrs_of(runs: list, device) -> dict:
    """/run attributes: what every run log agrees on, fps and latency over all runs, warnings."""
    logs = [run.run_log for run in runs if run.run_log]
    per_image = {"image", "top5", "latency_s", "manifest_sha256", "resized", "warnings"}
    common = {}
    if logs:
        for key, value in logs[0].items():
            if key not in per_image and all(log.get(key) == value for log in logs[1:]):
                common[key] = value
    devices = sorted({str(log["device"]) for log in logs if log.get("device")})
    if len(devices) > 1:
        common["device"] = ", ".join(devices)
    common["device"] = common.get("device") or device or UNKNOWN_DEVICE
    latencies = [v for log in logs for v in _latencies(log.get("latency_s"))]
    if latencies:
        lat = np.array(latencies)
        common["latency_s"] = {"mean": float(lat.mean()), "min": float(lat.min()),
                               "max": float(lat.max()), "runs": len(lat)}
        common["fps"] = float(1.0 / lat.mean())
    warnings = [w for log in logs for w in (log.get("warnings") or [])]
    common["warnings"] = list(dict.fromkeys(warnings))
    common["run_logs"] = {run.key: str(run.run_log_path) for run in runs if run.run_log_path}
    return common


def ingest_dump(dump_dir, manifest, out_path, *, layout="auto", dtype="auto", image=None,
                images=None, console_log=None, device=None) -> IngestReport:
    """Read a dump folder and write the device store ``out_path``; returns an :class:`IngestReport`.

    ``manifest``: dict or path.  ``image``, ``images``, ``console_log``: as for
    :func:`dump_images` (``images`` also shapes ``__Input__``).  ``device``: the device name
    when no run log has one.  Raises :class:`IngestError` (nothing written) when the folder's
    layout is not one the module accepts.
    """
    if layout not in LAYOUTS:
        raise IngestError(f"layout {layout!r}: expected one of {LAYOUTS}")
    if dtype not in DTYPES:
        raise IngestError(f"dtype {dtype!r}: expected one of {DTYPES}")
    manifest = load_manifest(manifest) if isinstance(manifest, (str, Path)) else \
        as_manifest(manifest)
    runs = dump_images(dump_dir, manifest, images, image=image, console_log=console_log)
    image_paths = {_image_key(p.name): p for p in list_images(images)} if images else {}
    report = IngestReport(out=str(out_path), model=manifest.name)
    stale = {}
    run_attrs = run_attrs_of(runs, device)
    with StoreWriter(out_path, "device", manifest, device=run_attrs["device"],
                     dump_dir=str(dump_dir)) as writer:
        for run in runs:
            reason = _ingest_run(writer, manifest, run, report, layout=layout, dtype=dtype,
                                 images=image_paths)
            if reason:
                stale[run.key] = reason
            report.images.append(run.key)
            report.named_by[run.key] = run.named_by
            writer.flush()
        run_attrs.update(stale_conversion=stale, ignored_files=report.ignored,
                         ingest_warnings=report.warnings)
        writer.set_run(**run_attrs)
        writer.set_attrs(layout_option=layout, dtype_option=dtype,
                         layout_rule_files=report.layout_rule)
    return report
