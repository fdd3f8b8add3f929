"""The activation store: golden (Keras) and device activations in one format, so they compare like with like.

One HDF5 file per model and image set, written by ``golden`` (kind ``golden``) and
``device_pull ingest`` (kind ``device``), read by validation and reports.  Format
``keras2metal.store/1``::

    /                                   root attributes
        format           "keras2metal.store/1"
        kind             "golden" | "device"
        model            manifest name (Forge model name, e.g. "resnet_50")
        manifest_sha256  core.manifest.manifest_hash of the manifest (its content, not its path)
        keras, tensorflow  versions (golden: the ones that computed it; device: from the manifest)
        preprocessing    JSON: the manifest's preprocessing block
        precision        "float32" | "float16" (golden: what Keras ran in; device: "float16")
        device           device stores: "reference device" or the phone's name
        complete         True, set as the very last write (files without it are rejected)
        folded           golden stores: True when /folded holds the folded model's activations
        _json            names of the attributes stored as JSON strings (decoded by the reader)
    /images/<image_key>/                one group per image; key = image file stem
        attrs: image (file name); device stores also top5 (JSON list of {index, probability,
               label?}), top5_source, latency_s (mean) and latency_runs_s, dump_dir, named_by
               (what named the image), device, ios_version, manifest_sha256 (the run log's),
               stale_conversion (reason or null), ignored_files (JSON list), warnings
        <tensor name>                   float32 dataset, HWC, one per manifest tensor, in the
                                        manifest's topological order; dataset name = Forge tensor
                                        name ("/" would be written as "%2F", "%" as "%25")
            attrs: status ∈ STATUSES, reason (human text naming the file and what to do),
                   name (the tensor name as is), plus optional details (layout, source file)
    /folded/<image_key>/<tensor name>   golden only, with ``--folded``: the folded ``_nobn``
                                        model's activations, same layout; attr
                                        ``max_abs_diff`` against /images
    /run                                attrs of the device runs: what all run logs agree on
                                        (device, fault, ...), fps and latency_s (JSON: mean,
                                        min, max, runs) over all runs, warnings (JSON),
                                        run_logs, stale_conversion ({image: reason}), ...

Statuses: ``ok`` (data usable), ``missing`` (empty (0,) dataset: no data at all),
``truncated`` / ``oversized`` (file size fits no accepted layout; the bytes are kept, flat),
``shape_mismatch`` (shapes json or Keras shape disagrees with the manifest), ``nan_inf`` (data
kept; the count is in the reason), ``wrong_model`` (file of another model's prefix),
``stale_conversion`` (the run log's manifest hash is not this store's manifest's: the dumps come
from another conversion; every tensor of that image has it, data kept, the status it would have
had in the attribute ``status_before_stale``), ``not_compared`` (kept for reference only, e.g.
Forge's ``__Input__`` texture).  All but ``ok`` and ``not_compared`` are data problems: the
reason names the file and what it shows, :data:`FIXES` what a user does about it (the ingest's
summary and the judge's verdicts both print it from there); they are never numerical divergence.

Nothing is silently dropped: every manifest tensor has a dataset in every image, with a status.

Writes are atomic: the writer fills ``<path>.tmp-<pid>`` and renames it over ``path`` on a clean
close; an interrupted run leaves only the temporary file (and no ``complete`` flag), so no
valid-looking store appears.

This module imports nothing of the project but ``core.manifest``; otherwise the standard library,
numpy and h5py.
"""
import glob
import json
import os
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Optional

import h5py
import numpy as np

from core.contracts import ContractError, component, contract, load, to_dict
from core.manifest import as_manifest, manifest_hash

FORMAT = "keras2metal.store/1"
KINDS = ("golden", "device")
STATUSES = ("ok", "missing", "truncated", "oversized", "shape_mismatch", "nan_inf",
            "wrong_model", "stale_conversion", "not_compared")
SECTIONS = ("images", "folded")

# What a user does about each data problem: the reason names the file and says what is wrong.
FIXES = {
    "missing": "run the app with debug: true (debugEvaluate dumps every tensor) and copy the "
               "whole Documents folder again",
    "truncated": "copy the Documents folder off the phone again",
    "oversized": "re-run the app with this build and copy the Documents folder again",
    "shape_mismatch": "convert again, rebuild the app with the new builder and weights, and "
                      "re-run it (or validate with the manifest the app was built from)",
    "wrong_model": "validate the files with the model of their prefix, or run the app with this "
                   "one",
    "stale_conversion": "re-run the app with this build's builder and weights, or validate with "
                        "the manifest the app was built from",
    "nan_inf": "if the copy is complete and the tensors before this one have none, this layer "
               "overflows float16 on the device (values beyond ±65504) or reads uninitialised "
               "padding: check the value range of the Keras layer and rescale it, or check its "
               "conversion; if the copy may be damaged, copy the Documents folder again",
    "not_compared": "the device side marks this tensor as not comparable; re-run the app with "
                    "this build",
}


def fix_for(status: str) -> str:
    """The fix of a data problem's status (a generic one for a status this table lacks)."""
    return FIXES.get(status, "copy the dump folder again, or re-run the app with this build")


@component
class StoreInfo:
    """The root attributes every store has, checked when a store is opened (``info``); writers
    may add more (``attrs`` holds them all)."""
    format: str
    kind: str
    model: str
    manifest_sha256: str
    keras: str
    tensorflow: str
    preprocessing: dict
    precision: str
    complete: bool
    device: Optional[str] = None


class StoreError(ValueError):
    """A store that is missing, unreadable, incomplete or not of this format."""


def encode_name(name: str) -> str:
    """Tensor name → HDF5 link name (``%`` → ``%25``, ``/`` → ``%2F``, ``.`` alone → ``%2E``)."""
    encoded = name.replace("%", "%25").replace("/", "%2F")
    return "%2E" if encoded == "." else encoded


def decode_name(link: str) -> str:
    """Inverse of :func:`encode_name`."""
    if link == "%2E":
        return "."
    return link.replace("%2F", "/").replace("%25", "%")


def package_version(dist: str) -> str:
    """Installed version of a distribution (``tensorflow`` also finds ``tensorflow-cpu``)."""
    for name in (dist, dist + "-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _set_attrs(obj, attrs: dict):
    """Write attributes; dict/list/tuple/None values go in as JSON and are listed in ``_json``."""
    json_names = set(json.loads(obj.attrs["_json"])) if "_json" in obj.attrs else set()
    for key, value in attrs.items():
        if isinstance(value, (dict, list, tuple)) or value is None:
            obj.attrs[key] = json.dumps(value)
            json_names.add(key)
        else:
            if isinstance(value, Path):
                value = str(value)
            obj.attrs[key] = value
            json_names.discard(key)
    if json_names:
        obj.attrs["_json"] = json.dumps(sorted(json_names))


def _get_attrs(obj) -> dict:
    json_names = set(json.loads(obj.attrs["_json"])) if "_json" in obj.attrs else set()
    out = {}
    for key, value in obj.attrs.items():
        if key == "_json":
            continue
        if isinstance(value, bytes):
            value = value.decode()
        if key in json_names:
            value = json.loads(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


@contract(FORMAT, "write the store again")
class _StoreInfoFile:
    """Validates a store's root attributes (errors name the attribute)."""
    info: StoreInfo
    format: str = FORMAT


UNFINISHED = ".tmp-"              # a store being written: <store name>.tmp-<writer's pid>


def remove_unfinished(path):
    """Delete what writers of the store ``path`` left when they died (e.g. a killed Dask
    worker): their temporary files.  Only where no other writer of ``path`` can be at work."""
    path = Path(path)
    for tmp in path.parent.glob(glob.escape(path.name + UNFINISHED) + "*"):
        tmp.unlink(missing_ok=True)


class StoreWriter:
    """Write a store atomically.  Use as a context manager; an exception inside aborts.

    ``StoreWriter(path, kind, manifest, **attrs)``: ``manifest`` is the conversion's manifest
    (:func:`core.manifest.load_manifest`); ``attrs`` add to or override the root attributes.
    """

    def __init__(self, path, kind: str, manifest, **attrs):
        if kind not in KINDS:
            raise ValueError(f"store kind {kind!r}: expected one of {KINDS}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = self.path.with_name(f"{self.path.name}{UNFINISHED}{os.getpid()}")
        self.kind = kind
        self.manifest = manifest = as_manifest(manifest)
        self._file = h5py.File(self.tmp_path, "w", track_order=True)
        root = {
            "format": FORMAT,
            "kind": kind,
            "model": manifest.name,
            "manifest_sha256": manifest_hash(manifest),
            "keras": manifest.source.keras or package_version("keras"),
            "tensorflow": manifest.source.tensorflow or package_version("tensorflow"),
            "preprocessing": to_dict(manifest.preprocessing),
            "precision": "float32" if kind == "golden" else "float16",
        }
        if kind == "device":
            root["device"] = "unknown"
        root.update(attrs)
        _set_attrs(self._file, root)
        self._file.create_group("images", track_order=True)
        self._closed = False

    # -- structure ------------------------------------------------------------------------
    def set_attrs(self, **attrs):
        """Add or override root attributes."""
        _set_attrs(self._file, attrs)

    def image(self, key: str, section: str = "images", **attrs):
        """Create (once) the group of one image and set its attributes; returns the group."""
        if section not in SECTIONS:
            raise ValueError(f"section {section!r}: expected one of {SECTIONS}")
        parent = self._file.require_group(section) if section != "images" else self._file["images"]
        link = encode_name(key)
        group = parent[link] if link in parent else parent.create_group(link, track_order=True)
        if attrs:
            _set_attrs(group, attrs)
        return group

    def set_run(self, **attrs):
        """Attributes of the device run log (fps, latency, device, warnings, ...)."""
        group = self._file.require_group("run")
        _set_attrs(group, attrs)

    def write(self, image: str, name: str, data, status: str = "ok", reason: str = "",
              section: str = "images", **attrs):
        """One tensor of one image: float32 data (any shape; HWC for feature maps)."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r} of tensor {name!r}: expected one of {STATUSES}")
        group = self.image(image, section=section)
        link = encode_name(name)
        if link in group:
            del group[link]
        array = np.zeros((0,), np.float32) if data is None else np.asarray(data, dtype=np.float32)
        dataset = group.create_dataset(link, data=array)
        _set_attrs(dataset, {"name": name, "status": status, "reason": reason, **attrs})
        return dataset

    def missing(self, image: str, name: str, reason: str, section: str = "images", **attrs):
        """Record a tensor without data: empty (0,) dataset, status ``missing``."""
        return self.write(image, name, None, "missing", reason, section=section, **attrs)

    def flush(self):
        self._file.flush()

    # -- life cycle -----------------------------------------------------------------------
    def close(self):
        """Finish: set ``complete`` and move the file into place."""
        if self._closed:
            return
        self._file.attrs["complete"] = True
        self._file.close()
        os.replace(self.tmp_path, self.path)
        self._closed = True

    def abort(self):
        """Drop everything written so far (the temporary file is removed)."""
        if self._closed:
            return
        try:
            self._file.close()
        finally:
            self._closed = True
            try:
                os.unlink(self.tmp_path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class Store:
    """Read a store: ``with Store(path) as s: data, status, reason = s.tensor("dog", "conv1")``."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such store; write it with `python -m golden capture` "
                             "or `python -m device_pull ingest`")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise StoreError(f"{self.path}: not an HDF5 file ({exc})") from None
        fmt = self._file.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT:
            self._file.close()
            raise StoreError(f"{self.path}: format is {fmt!r}, expected {FORMAT!r}")
        if not self._file.attrs.get("complete", False):
            self._file.close()
            raise StoreError(f"{self.path}: incomplete store (the run that wrote it was "
                             "interrupted); write it again")
        self.attrs = _get_attrs(self._file)
        core = {k: self.attrs.get(k) for k in StoreInfo.__dataclass_fields__ if k in self.attrs}
        try:
            self.info = load(_StoreInfoFile, {"format": FORMAT, "info": core}, str(self.path)).info
        except ContractError as exc:
            self._file.close()
            raise StoreError(f"{exc}") from None

    # -- navigation -----------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.attrs["kind"]

    @property
    def has_folded(self) -> bool:
        return "folded" in self._file

    def _group(self, image: str, section: str = "images"):
        try:
            return self._file[section][encode_name(image)]
        except KeyError:
            raise KeyError(f"{self.path}: no image {image!r} in /{section} "
                           f"(images: {', '.join(self.images()) or 'none'})") from None

    def images(self) -> list:
        return [decode_name(k) for k in self._file["images"].keys()]

    def image_attrs(self, image: str) -> dict:
        return _get_attrs(self._group(image))

    def tensor_names(self, image: str, section: str = "images") -> list:
        return [decode_name(k) for k in self._group(image, section).keys()]

    def tensor(self, image: str, name: str, section: str = "images"):
        """(float32 array, status, reason) of one tensor of one image."""
        group = self._group(image, section)
        try:
            dataset = group[encode_name(name)]
        except KeyError:
            raise KeyError(f"{self.path}: image {image!r} has no tensor {name!r} in /{section}") from None
        attrs = _get_attrs(dataset)
        return dataset[()], attrs.get("status", "ok"), attrs.get("reason", "")

    def tensor_attrs(self, image: str, name: str, section: str = "images") -> dict:
        return _get_attrs(self._group(image, section)[encode_name(name)])

    def run_attrs(self) -> dict:
        return _get_attrs(self._file["run"]) if "run" in self._file else {}

    def status_counts(self, section: str = "images") -> Counter:
        """status → number of (image, tensor) pairs."""
        counts = Counter()
        if section not in self._file:
            return counts
        for group in self._file[section].values():
            for dataset in group.values():
                status = dataset.attrs.get("status", "ok")
                counts[status.decode() if isinstance(status, bytes) else status] += 1
        return counts

    # -- life cycle -----------------------------------------------------------------------
    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False
