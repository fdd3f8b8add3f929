"""The measurements a run is judged on: device vs golden per tensor, predictions, the run log.

Nothing here decides pass or fail (that is :mod:`validation.judge`); it reads the two stores and
says, per manifest tensor, what was compared over which images, and what stood in the way:

* :func:`compare_tensors` → one :class:`Comparison` per manifest tensor, in topological order:
  ``comparable`` (the tensor has a Keras counterpart), the metrics over every image where both
  sides have usable data, and one :class:`Problem` per image where they do not (the store's
  status and reason: missing, truncated, NaN/Inf, stale conversion, ...);
* :func:`predictions` → per image the Keras and device top-5 and the label;
* :func:`run_log` → the device side's run facts (device name, source of the timings).
"""
from dataclasses import dataclass, field
from typing import Optional

from core.manifest import manifest_hash
from stores import Store

from validation.metrics import Accumulator, top_k

USABLE = ("ok",)


class StaleStoreError(RuntimeError):
    """A store written for another manifest than the one being validated."""


@dataclass
class Problem:
    kind: str                  # device store status, or golden_<status> for the Keras side
    image: Optional[str]
    reason: str


@dataclass
class Comparison:
    name: str
    index: int
    forge_type: str
    shape: Optional[list]
    inputs: list
    keras_layer: Optional[str]
    comparable: bool
    not_comparable_reason: str = ""
    metrics: Optional[dict] = None        # validation.metrics.Accumulator.result() + images
    problems: list = field(default_factory=list)


def comparable(entry: dict) -> bool:
    ref = entry.get("reference")
    return bool(entry.get("compare", True)) and bool(ref) and ref.get("kind") != "input_texture"


def _not_comparable_reason(entry: dict) -> str:
    ref = entry.get("reference") or {}
    if ref.get("kind") == "input_texture":
        return "Forge's input texture (raw 8-bit image), not a network tensor"
    if entry.get("forge_type") == "Collect":
        return "Collect only gathers the inputs of a merge; Forge writes no dump for it"
    if not entry.get("dump_file"):
        return "Forge's dumper writes no file for this tensor (it is dumped through the " \
               "tensors it feeds)"
    return "no Keras counterpart (e.g. a Dense whose activation Keras fuses); judged through " \
           "the next tensor"


def check_fresh(store: Store, manifest: dict, side: str) -> None:
    """Refuse a store written for another manifest (its content hash is recorded in the store)."""
    recorded, current = store.attrs.get("manifest_sha256"), manifest_hash(manifest)
    if recorded != current:
        raise StaleStoreError(
            f"{store.path}: the {side} store was written for another conversion (manifest hash "
            f"{str(recorded)[:12]}…, this manifest {current[:12]}…); delete it (or the cache "
            "folder) so it is made again")


def compare_tensors(manifest: dict, golden: Store, device: Store) -> list:
    """One :class:`Comparison` per manifest tensor (see the module docstring)."""
    gold_images = golden.images()
    dev_images = set(device.images())
    out = []
    for entry in manifest["tensors"]:
        ref = entry.get("reference") or {}
        row = Comparison(
            name=entry["name"], index=entry["index"], forge_type=entry["forge_type"],
            shape=entry.get("shape"), inputs=list(entry.get("inputs", [])),
            keras_layer=ref.get("layer") or (entry.get("keras_layers") or [None])[-1],
            comparable=comparable(entry))
        out.append(row)
        if not row.comparable:
            row.not_comparable_reason = _not_comparable_reason(entry)
            continue
        acc, images = Accumulator(), 0
        if not gold_images:
            row.problems.append(Problem("missing", None, "the golden store holds no images"))
        for image in gold_images:
            g, g_status, g_reason = golden.tensor(image, entry["name"])
            if g_status not in USABLE:
                row.problems.append(Problem(f"golden_{g_status}", image, g_reason))
                continue
            if image not in dev_images:
                row.problems.append(Problem("missing", image, f"the device results hold no "
                                                              f"image {image!r}"))
                continue
            d, d_status, d_reason = device.tensor(image, entry["name"])
            if d_status == "nan_inf":             # the values are kept: measure them too
                acc.add(g, d)
            if d_status not in USABLE:
                row.problems.append(Problem(d_status, image, d_reason))
                continue
            if d.size != g.size:
                row.problems.append(Problem("shape_mismatch", image, f"the device has {d.size} "
                                            f"values, Keras {g.size}"))
                continue
            acc.add(g, d)
            images += 1
        if acc.count or acc.nan_inf:
            row.metrics = dict(acc.result(), images=images)
    return out


# -- predictions and the run log ---------------------------------------------------------------

@dataclass
class Prediction:
    image: str
    label: Optional[int]
    keras: Optional[list]          # top-5 class indices
    device: Optional[list]


def _top5(store: Store, image: str, tensor: str):
    data, status, _ = store.tensor(image, tensor)
    return top_k(data, 5) if status == "ok" and data.size else None


def predictions(manifest: dict, golden: Store, device: Store, labels: dict) -> list:
    """Per golden image: the label and the Keras and device top-5 (None where unusable)."""
    out_name = (manifest.get("output") or {}).get("tensor")
    dev_images = set(device.images())
    rows = []
    for image in golden.images():
        row = Prediction(image, labels.get(image), _top5(golden, image, out_name), None)
        if image in dev_images:
            row.device = _top5(device, image, out_name)
            if row.device is None:
                top5 = device.image_attrs(image).get("top5") or []
                indices = [int(p["index"]) for p in top5 if "index" in p][:5]
                row.device = indices or None
        rows.append(row)
    return rows


def run_log(device: Store) -> dict:
    """The device side's run facts: the run log (phone app or reference device) as ingested."""
    return device.run_attrs()


def device_name(device: Store) -> str:
    return device.run_attrs().get("device") or device.attrs.get("device") or "unknown device"


def open_stores(prepared):
    """(golden, device) stores of a prepared run, both checked against its manifest."""
    golden, device = Store(prepared.golden_path), Store(prepared.device_path)
    try:
        check_fresh(golden, prepared.manifest, "golden")
        check_fresh(device, prepared.manifest, "device")
    except StaleStoreError:
        golden.close()
        device.close()
        raise
    return golden, device
