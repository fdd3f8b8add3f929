"""Golden capture: run Keras on images through the device's input path and store every manifest tensor.

For every manifest tensor, its ``reference`` (see :mod:`core.manifest`) says what to record:

* ``input_texture``: raw B, G, R bytes 0..255 as floats at the original image size (Forge's
  ``__Input__``), status ``not_compared``;
* ``image``: the RGB image in [0, 1] at the network size (8-bit Lanczos resize when needed);
* ``preprocessing`` step k: the image after the manifest's preprocessing steps 0..k, in float32;
* ``keras``: that layer's output in the original model (times ``a`` plus ``b`` when ``affine``
  is given), with the batch axis dropped and reshaped to the manifest's H, W, C.

All Keras layer outputs needed come from ONE multi-output sub-model run per batch of images; the
Keras input is the image after all preprocessing steps.  Images are streamed: one batch is run
while the one before it is written and the one after it is read, then dropped, so memory stays
bounded by the model, two batches' activations and one batch of images.
"""
import json
import re
import time
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from imagesets.images import image_key, image_size, list_images, load_bgr_texture, load_rgb01
from core.manifest import ManifestError, TensorEntry, as_manifest, load_manifest, preprocessing_step
from core.preprocessing import apply_step
from golden.heap import keep_freed_memory
from stores.store import StoreWriter

PRECISIONS = ("float32", "float16")


class GoldenError(ValueError):
    """A model, manifest or image set golden capture cannot work with; the text says what to do."""


# -- preprocessing ---------------------------------------------------------------------------

def preprocess_steps(rgb01: np.ndarray, steps: list) -> list:
    """The image after each preprocessing step (float32), in order; ``[-1]`` is the Keras input."""
    x = np.asarray(rgb01, dtype=np.float32)
    out = []
    for k, step in enumerate(steps):
        try:
            step = preprocessing_step(step)
        except ManifestError as exc:
            raise GoldenError(f"manifest preprocessing step {k}: {exc}") from None
        x = apply_step(x, step)
        out.append(x)
    return out


# -- Keras plumbing --------------------------------------------------------------------------

def _keras():
    from core.kerasenv import keras

    return keras


def _layer_output(model, layer_name: str, index: int):
    layer = model.get_layer(layer_name)
    try:
        out = layer.output
    except (AttributeError, ValueError, RuntimeError):
        nodes = getattr(layer, "_inbound_nodes", [])
        if index < len(nodes):
            tensors = nodes[index].output_tensors
            return tensors[0] if isinstance(tensors, (list, tuple)) else tensors
        raise
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    if index >= len(outs):
        raise GoldenError(f"Keras layer {layer_name!r} has {len(outs)} output(s), the manifest "
                          f"asks for output_index {index}; re-run keras2metal")
    return outs[index]


def _has_layer(model, name: str) -> bool:
    try:
        model.get_layer(name)
        return True
    except ValueError:
        return False


def to_float16_model(model):
    """A copy of ``model`` whose layers compute in float16 with float16 weights.

    What the original ``convertfp16.py`` did by rewriting the saved model's dtypes: Keras itself
    then shows the float16 error floor the device's float16 images cannot go below.
    """
    keras = _keras()

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float16"
        return layer.__class__.from_config(config)

    try:
        clone16 = keras.models.clone_model(model, clone_function=clone)
    except Exception as exc:  # noqa: BLE001 - custom layers may refuse; say what to do
        raise GoldenError(f"cannot rebuild Keras model {model.name!r} in float16 ({exc}); "
                          "use --precision float32") from None
    clone16.set_weights(model.get_weights())
    return clone16


def _check_input(model, manifest):
    if len(model.inputs) != 1:
        raise GoldenError(f"Keras model {model.name!r} has {len(model.inputs)} inputs; golden "
                          "capture supports single-input image models")
    shape = tuple(model.inputs[0].shape)
    width, height = manifest.input.width, manifest.input.height
    if len(shape) != 4 or (shape[1] not in (None, height)) or (shape[2] not in (None, width)):
        raise GoldenError(f"Keras model {model.name!r} takes input {shape}, the manifest "
                          f"{manifest.path or 'manifest'} says {height}x{width}; is the manifest "
                          "from another model? re-run keras2metal")


_SUB_MODELS = weakref.WeakKeyDictionary()


class _Plan:
    """What to compute for one Keras model: the sub-model and where each tensor's data comes from."""

    def __init__(self, model, manifest, *, folded=False, all_layers=False):
        keras = _keras()
        self.model = model
        self.outputs = []            # Keras tensors of the sub-model
        self.index = {}              # (layer, output_index) -> position in outputs
        self.source = {}             # tensor name -> (position, affine, layer) or (None, reason)
        for entry in manifest.tensors:
            ref = entry.reference
            if not ref or ref.kind != "keras":
                continue
            layer = self._pick_layer(model, entry, ref, folded)
            if layer is None:
                wanted = ref.layer
                what = ("the folded model has none of the layers " +
                        ", ".join(repr(n) for n in [wanted, *entry.keras_layers])
                        if folded else f"Keras model {model.name!r} has no layer {wanted!r}")
                hint = ("is the manifest from another model? re-run keras2metal for this model"
                        if not re.search(r"_\d+$", wanted or "") else
                        "Keras numbers unnamed layers (add_3, ...) per process, so a model built "
                        "after others gets other names: load it in a fresh process or call "
                        "keras.backend.clear_session() first")
                self.source[entry.name] = (None, f"{what}; {hint}")
                continue
            key = (layer, ref.output_index)
            self.source[entry.name] = (self._add(key), ref.affine, layer)
        self.layer_outputs = []      # (layer name, position) for --floats
        if all_layers:
            for layer in model.layers:
                try:
                    out = layer.output
                except (AttributeError, ValueError, RuntimeError):
                    continue
                if isinstance(out, (list, tuple)):
                    continue
                self.layer_outputs.append((layer.name, self._add((layer.name, 0), out)))
        self.sub_model = None
        if self.outputs:
            # One sub-model per (model, outputs), kept while the model lives: predict_on_batch
            # traces it once, so repeated captures with the same model do not trace again.
            cache = _SUB_MODELS.setdefault(model, {})
            key = tuple(self.index)
            if key not in cache:
                cache[key] = keras.Model(model.inputs, self.outputs)
            self.sub_model = cache[key]

    def _add(self, key, tensor=None):
        if key not in self.index:
            self.index[key] = len(self.outputs)
            self.outputs.append(tensor if tensor is not None else _layer_output(self.model, *key))
        return self.index[key]

    @staticmethod
    def _pick_layer(model, entry, ref, folded):
        candidates = [ref.layer]
        if folded:
            candidates += list(reversed(entry.keras_layers)) + [entry.name]
        for name in candidates:
            if name and _has_layer(model, name):
                return name
        return None

    def run(self, batch: np.ndarray) -> list:
        if self.sub_model is None:
            return []
        dtype = self.sub_model.inputs[0].dtype
        x = batch.astype("float16" if "float16" in str(dtype) else np.float32)
        out = self.sub_model.predict_on_batch(x)
        if not isinstance(out, (list, tuple)):
            out = [out]
        return [np.asarray(o, dtype=np.float32) for o in out]


def _fit_shape(act: np.ndarray, shape):
    """Batch-less activation → manifest shape; (array, ok)."""
    if shape and all(isinstance(s, int) and s > 0 for s in shape):
        if act.size == int(np.prod(shape)):
            return act.reshape(shape), True
        return act, False
    return act, True


def _status_of(data: np.ndarray, entry: TensorEntry, status: str, reason: str):
    if status == "ok":
        bad = int(np.count_nonzero(~np.isfinite(data))) if data.size else 0
        if bad:
            return "nan_inf", (f"Keras produced {bad} NaN/Inf value(s) of {data.size} in "
                               f"{entry.name!r}; check the weights (--weights/--seed)")
        if not entry.compare:
            return "not_compared", "the manifest marks this tensor compare: false"
    return status, reason


def _write_floats(floats_dir: Path, key: str, model_name: str, plan: _Plan, acts: list, row: int):
    """The original ``test_classifier.py`` files: ``<model>-<keras layer>.floats`` + shapes.json."""
    folder = floats_dir / key
    folder.mkdir(parents=True, exist_ok=True)
    shapes = {}
    for layer, pos in plan.layer_outputs:
        act = acts[pos][row]
        if act.ndim == 3:
            saved_shape = [*act.shape, 1]
        elif act.ndim == 2:
            saved_shape = [*act.shape, 1]
        else:
            saved_shape = [int(act.size), 1]
        name = f"{model_name}-{layer}.floats"
        np.ascontiguousarray(act, dtype="<f4").tofile(folder / name)
        shapes[name] = [int(s) for s in saved_shape]
    (folder / "shapes.json").write_text(json.dumps(shapes, sort_keys=True, indent=4))


# -- the capture -----------------------------------------------------------------------------

class GoldenRunner:
    """Keras on images through the device's input path: every manifest tensor of each image.

    The Keras sub-model is traced once; :meth:`images` runs a batch (one image per row), and
    :meth:`records` gives one image's ``{tensor: (data or None, status, reason)}``.
    """

    def __init__(self, model, manifest, *, precision="float32", folded_model=None,
                 all_layers=False):
        if precision not in PRECISIONS:
            raise GoldenError(f"precision {precision!r}: expected one of {PRECISIONS}")
        manifest = as_manifest(manifest)
        _check_input(model, manifest)
        if folded_model is not None:
            _check_input(folded_model, manifest)
        if precision == "float16":
            model = to_float16_model(model)
            if folded_model is not None:
                folded_model = to_float16_model(folded_model)
        self.model, self.manifest, self.precision = model, manifest, precision
        self.plan = _Plan(model, manifest, all_layers=all_layers)
        self.folded_plan = _Plan(folded_model, manifest, folded=True) \
            if folded_model is not None else None
        self.steps = manifest.preprocessing.steps
        self.width, self.height = manifest.input.width, manifest.input.height
        keep_freed_memory()

    def images(self, paths) -> "GoldenBatch":
        """Run Keras (and the folded model) on ``paths`` as one batch."""
        return self.run(self.load(paths))

    def load(self, paths) -> "GoldenBatch":
        """``paths`` read, resized and put through the preprocessing steps, not run yet (a
        batch whose ``acts`` are None): reading the next batch can overlap running this one."""
        rgb = [load_rgb01(p, self.width, self.height) for p in paths]
        pre = [preprocess_steps(x, self.steps) for x in rgb]
        return GoldenBatch(self, list(paths), rgb, pre, None, None)

    def run(self, loaded: "GoldenBatch") -> "GoldenBatch":
        """Keras (and the folded model) on a batch from :meth:`load`."""
        keras_in = np.stack([p[-1] if p else x for p, x in zip(loaded.pre, loaded.rgb)])
        acts = self.plan.run(keras_in)
        folded = self.folded_plan.run(keras_in) if self.folded_plan else None
        return GoldenBatch(self, loaded.paths, loaded.rgb, loaded.pre, acts, folded)

    def records(self, path) -> dict:
        """One image's ``{tensor name: (data or None, status, reason)}``."""
        return self.images([path]).records(0)


class GoldenBatch:
    """The Keras activations of a batch of images, read out image by image."""

    def __init__(self, runner, paths, rgb, pre, acts, folded):
        self.runner, self.paths, self.rgb, self.pre = runner, paths, rgb, pre
        self.acts, self.folded = acts, folded

    def records(self, row: int) -> dict:
        out = {}
        for entry in self.runner.manifest.tensors:
            data, status, reason = _golden_tensor(entry, self.paths[row], self.rgb[row],
                                                  self.pre[row], self.runner.plan, self.acts, row)
            if data is not None:
                status, reason = _status_of(data, entry, status, reason)
            out[entry.name] = (data, status, reason)
        return out


def capture_golden(model, manifest, images, out_path, *, folded_model=None, precision="float32",
                   batch=1, floats_dir=None, progress=True) -> dict:
    """Run ``model`` (and ``folded_model``) on ``images`` and write the golden store ``out_path``.

    ``manifest``: dict from :func:`core.manifest.load_manifest` or its path.  ``images``: a folder,
    an image path or a list of them.  ``precision="float16"`` runs Keras itself in float16.
    ``floats_dir``: also write the original tool's per-layer ``.floats`` files there, one folder
    per image.  Returns a summary: images, tensors, status counts, folded max abs differences,
    seconds.
    """
    manifest = load_manifest(manifest) if isinstance(manifest, (str, Path)) else \
        as_manifest(manifest)
    batch = max(1, int(batch))
    paths = list_images(images)
    keras = _keras()
    runner = GoldenRunner(model, manifest, precision=precision, folded_model=folded_model,
                          all_layers=floats_dir is not None)
    floats_dir = Path(floats_dir) if floats_dir is not None else None

    from core.kerasenv import KERAS_VERSION
    from stores.store import package_version

    counts, folded_diff = Counter(), {}
    start = time.perf_counter()
    attrs = dict(keras=KERAS_VERSION, tensorflow=package_version("tensorflow"), precision=precision,
                 folded=folded_model is not None, keras_model=model.name, batch=batch,
                 backend=keras.backend.backend())
    # The store is written on a thread of its own while Keras computes the next batch (its
    # pass runs outside the GIL), and the batch after that is read on another (decoding and
    # resizing release it too): at most two batches' activations in memory, one computed and
    # one written, and one batch of images read ahead.
    batches = [paths[first:first + batch] for first in range(0, len(paths), batch)]
    with StoreWriter(out_path, "golden", manifest, **attrs) as writer, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="golden-store") as io, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="golden-images") as reader:
        bar = _progress(len(paths), progress, manifest.name)
        writing = None
        reading = reader.submit(runner.load, batches[0]) if batches else None
        for k in range(len(batches)):
            loaded = reading.result()
            if k + 1 < len(batches):
                reading = reader.submit(runner.load, batches[k + 1])
            chunk = runner.run(loaded)
            if writing is not None:
                writing.result()
            writing = io.submit(_write_batch, writer, chunk, runner, floats_dir, counts,
                                folded_diff, bar)
            del chunk, loaded
        if writing is not None:
            writing.result()
        bar.close()
        summary = {"images": len(paths), "tensors": len(manifest.tensors),
                   "statuses": dict(counts), "seconds": time.perf_counter() - start}
        if runner.folded_plan is not None:
            summary["folded_max_abs_diff"] = folded_diff
            writer.set_attrs(folded_max_abs_diff=max(folded_diff.values(), default=0.0))
    return summary


def _write_batch(writer, chunk, runner, floats_dir, counts, folded_diff, bar):
    """One batch's images into the store (and the folded section and ``.floats`` files)."""
    manifest = runner.manifest
    for row, path in enumerate(chunk.paths):
        key = image_key(path)
        w0, h0 = image_size(path)
        writer.image(key, image=path.name, original_width=w0, original_height=h0)
        records = chunk.records(row)
        for name, (data, status, reason) in records.items():
            writer.write(key, name, data, status, reason)
            counts[status] += 1
        if runner.folded_plan is not None:
            for entry in manifest.tensors:
                data, status, _ = records[entry.name]
                _write_folded(writer, key, entry, data, status, path, chunk.rgb[row],
                              chunk.pre[row], runner.folded_plan, chunk.folded, row, folded_diff)
        if floats_dir is not None:
            _write_floats(floats_dir, key, manifest.name, runner.plan, chunk.acts, row)
        writer.flush()
        bar.update(1)


def _golden_tensor(entry, path, rgb, pre, plan, acts, row):
    """(data or None, status, reason) of one tensor of one image."""
    ref = entry.reference
    name = entry.name
    if not ref:
        return None, "not_compared", (f"the manifest gives no Keras reference for {name!r} "
                                      "(Forge-only tensor); nothing to compare")
    kind = ref.kind
    if kind == "input_texture":
        return load_bgr_texture(path), "not_compared", (
            "raw B, G, R bytes of the image at its original size (Forge's __Input__); "
            "kept for reference, not compared")
    if kind == "image":
        data = rgb
    elif kind == "preprocessing":
        k = ref.step
        if not 0 <= k < len(pre):
            return None, "missing", (f"{name!r}: manifest preprocessing step {k} does not exist "
                                     f"({len(pre)} steps); re-run keras2metal")
        data = pre[k]
    elif kind == "keras":
        pos, *rest = plan.source.get(name, (None, "not planned"))
        if pos is None:
            return None, "missing", rest[0]
        affine = rest[0]
        data = acts[pos][row]
        if affine:
            data = np.float32(affine[0]) * data + np.float32(affine[1])
    else:
        return None, "missing", (f"{name!r}: unknown reference kind {kind!r} in the manifest; "
                                 "re-run keras2metal")
    fitted, ok = _fit_shape(np.asarray(data, np.float32), entry.shape)
    if not ok:
        return fitted, "shape_mismatch", (
            f"{name!r}: Keras gives shape {list(fitted.shape)}, the manifest says "
            f"{entry.shape}; re-run keras2metal for this model")
    return fitted, "ok", ""


def _write_folded(writer, key, entry, data, status, path, rgb, pre, plan, acts, row, diffs):
    if entry.reference is None or entry.reference.kind != "keras":
        # Identical by construction: same images, same preprocessing.
        writer.write(key, entry.name, data, status, "same as the original model (not a Keras "
                     "layer output)" if data is not None else "no data", section="folded")
        return
    fdata, fstatus, freason = _golden_tensor(entry, path, rgb, pre, plan, acts, row)
    if fdata is not None:
        fstatus, freason = _status_of(fdata, entry, fstatus, freason)
    extra = {}
    if fdata is not None and data is not None and fdata.shape == data.shape and data.size:
        diff = float(np.max(np.abs(fdata.astype(np.float64) - data)))
        extra["max_abs_diff"] = diff
        diffs[entry.name] = max(diff, diffs.get(entry.name, 0.0))
    writer.write(key, entry.name, fdata, fstatus, freason, section="folded", **extra)


def _progress(total, enabled, name):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"golden {name}", unit="image", disable=not enabled)
