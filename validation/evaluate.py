"""Compare the device store with the golden store, tensor by tensor, and read accuracy and speed.

:func:`tensor_metrics` gives, per manifest tensor in topological order, the metrics of
:mod:`validation.metrics` over all images plus a status before budgets are applied:

* ``compared`` — both sides have usable data in every image (metrics filled in);
* ``missing``  — the device has no data for the tensor in at least one image (no dump file, or
  no dump folder for the image at all): reported as missing, never as a pass;
* ``error``    — the device data is unusable (truncated, oversized, shape mismatch, another
  model's file) or the golden side could not compute it;
* ``not_compared`` — tensors with no Keras counterpart (Forge's input texture, Collect, a Dense
  whose softmax was fused in Keras, ...).

:func:`predictions` gives per image the Keras and the device top-5 and the label;
:func:`accuracy` and :func:`performance` summarise them and the run log.
"""
import json
from pathlib import Path


from imagesets.images import image_key
from stores.store import Store

from validation.metrics import Accumulator, top_k

BAD_DEVICE = {"truncated", "oversized", "shape_mismatch", "wrong_model"}


def comparable(entry: dict) -> bool:
    ref = entry.get("reference")
    return bool(entry.get("compare", True)) and bool(ref) and ref.get("kind") != "input_texture"


def tensor_metrics(manifest: dict, golden: Store, device: Store) -> list:
    """One dict per manifest tensor: name, index, forge_type, shape, keras_layer, inputs, status,
    reason and (when compared) the metrics."""
    gold_images = golden.images()
    dev_images = set(device.images())
    rows = []
    for entry in manifest["tensors"]:
        ref = entry.get("reference") or {}
        row = {"name": entry["name"], "index": entry["index"], "forge_type": entry["forge_type"],
               "shape": entry.get("shape"), "inputs": list(entry.get("inputs", [])),
               "keras_layer": ref.get("layer") or (entry.get("keras_layers") or [None])[-1],
               "keras_layers": list(entry.get("keras_layers", [])),
               "reference": ref or None}
        if not comparable(entry):
            row.update(status="not_compared", reason=_not_compared_reason(entry))
            rows.append(row)
            continue
        acc = Accumulator()
        missing, errors = [], []
        for image in gold_images:
            g, g_status, g_reason = golden.tensor(image, entry["name"])
            if g_status not in ("ok", "nan_inf"):
                errors.append(f"golden {image}: {g_status}: {g_reason}")
                continue
            if image not in dev_images:
                missing.append(f"{image}: the device has no dump for this image")
                continue
            try:
                d, d_status, d_reason = device.tensor(image, entry["name"])
            except KeyError:
                missing.append(f"{image}: not in the device store")
                continue
            if d_status == "missing":
                missing.append(f"{image}: {d_reason or 'no dump file'}")
                continue
            if d_status in BAD_DEVICE:
                errors.append(f"{image}: {d_status}: {d_reason}")
                continue
            if d_status == "not_compared":
                missing.append(f"{image}: device tensor not compared ({d_reason})")
                continue
            if d.size != g.size:
                errors.append(f"{image}: device has {d.size} values, Keras {g.size}")
                continue
            acc.add(g, d)
        if acc.count or acc.nan_inf:
            row.update(acc.result())
        if errors:
            row.update(status="error", reason="; ".join(errors[:3])
                       + (f"; ... ({len(errors)} images)" if len(errors) > 3 else ""))
        elif missing:
            row.update(status="missing", reason="; ".join(missing[:3])
                       + (f"; ... ({len(missing)} images)" if len(missing) > 3 else ""))
        elif not gold_images:
            row.update(status="missing", reason="no images in the golden store")
        else:
            row.update(status="compared", reason="")
        rows.append(row)
    return rows


def _not_compared_reason(entry: dict) -> str:
    ref = entry.get("reference") or {}
    if ref.get("kind") == "input_texture":
        return "Forge's input texture (raw 8-bit image), not a network tensor"
    if entry.get("forge_type") == "Collect":
        return "Collect only gathers the inputs of a merge; Forge writes no dump"
    return "no Keras counterpart (e.g. a Dense whose activation Keras fuses); checked through " \
           "the next tensor"


# -- predictions, accuracy, performance ---------------------------------------------------

def load_labels(path) -> dict:
    """Labels file → {image key: class index}.

    Accepted: JSON ``{"file.png": 3, ...}`` or ``{"labels": {...}, "classes": [...]}`` (keys
    are file names or stems), or text lines ``<file or stem> <index>`` (``#`` comments).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--labels {path}: no such file")
    text = path.read_text()
    out = {}
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--labels {path}: not valid JSON ({exc})") from None
        items = data.get("labels", data) if isinstance(data, dict) else None
        if not isinstance(items, dict):
            raise ValueError(f"--labels {path}: expected an object image → class index")
        for key, value in items.items():
            try:
                out[image_key(key)] = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"--labels {path}: class of {key!r} is {value!r}, expected an "
                                 "integer class index") from None
        return out
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise ValueError(f"--labels {path}:{number}: expected '<image> <class index>'")
        try:
            out[image_key(parts[0])] = int(parts[1])
        except ValueError:
            raise ValueError(f"--labels {path}:{number}: class index {parts[1]!r} is not an "
                             "integer") from None
    return out


def predictions(manifest: dict, golden: Store, device: Store, labels: dict) -> list:
    """Per golden image: {image, label, keras: [top5], device: [top5] | None}."""
    out_name = (manifest.get("output") or {}).get("tensor")
    dev_images = set(device.images())
    rows = []
    for image in golden.images():
        row = {"image": image, "label": labels.get(image), "keras": None, "device": None}
        try:
            g, status, _ = golden.tensor(image, out_name)
            if status in ("ok", "nan_inf") and g.size:
                row["keras"] = top_k(g, 5)
        except KeyError:
            pass
        if image in dev_images:
            try:
                d, status, _ = device.tensor(image, out_name)
            except KeyError:
                d, status = None, "missing"
            if d is not None and status in ("ok", "nan_inf") and d.size:
                row["device"] = top_k(d, 5)
            else:
                top5 = device.image_attrs(image).get("top5") or []
                if top5:
                    row["device"] = [int(p["index"]) for p in top5 if "index" in p][:5]
        rows.append(row)
    return rows


def accuracy(rows: list, kind: str) -> dict:
    """The results JSON's accuracy block (top-1/top-5 of device and Keras, agreement)."""
    if kind != "classifier":
        return {"images": len(rows), "labelled": 0, "device": None, "keras": None,
                "agreement": None, "note": f"output kind {kind!r}: top-k does not apply"}
    labelled = [r for r in rows if r["label"] is not None]

    def topk(side):
        usable = [r for r in labelled if r[side]]
        if not labelled:
            return None
        n = len(labelled)
        return {"top1": sum(1 for r in usable if r[side][0] == r["label"]) / n,
                "top5": sum(1 for r in usable if r["label"] in r[side][:5]) / n}

    both = [r for r in rows if r["keras"] and r["device"]]
    agreement = None
    if both:
        agreement = {
            "top1": sum(1 for r in both if r["keras"][0] == r["device"][0]) / len(both),
            "top5": sum(1 for r in both if set(r["keras"][:5]) == set(r["device"][:5]))
            / len(both)}
    return {"images": len(rows), "labelled": len(labelled), "device": topk("device"),
            "keras": topk("keras"), "agreement": agreement}


def performance(device: Store) -> dict:
    """fps and latency from the run log stored with the device results, or None."""
    run = device.run_attrs()
    fps = run.get("fps")
    lat = run.get("latency_s")
    if fps is None and not lat:
        return None
    if isinstance(lat, (int, float)):
        lat = {"mean": float(lat), "min": float(lat), "max": float(lat)}
    if fps is None and lat and lat.get("mean"):
        fps = 1.0 / lat["mean"]
    return {"fps": None if fps is None else float(fps), "latency_s": lat, "source": "run log"}


def device_name(device: Store) -> str:
    run = device.run_attrs()
    return run.get("device") or device.attrs.get("device") or "unknown"


def load_stores(prepared):
    return Store(prepared.golden_path), Store(prepared.device_path)
