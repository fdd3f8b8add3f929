"""Retrain a converted YOLOv2 model (``[region]`` head) on a detection dataset.

:func:`train` loads a Keras model written by ``yad2k`` (or any model whose output is the raw
(H, W, A*(5+K)) head), puts a new 1x1-style head conv of ``A*(5+K)`` filters on it when the
class or anchor count differs (or ``new_head``), trains with the YOLOv2 loss of
:mod:`training.yolo.loss` (TensorFlow ops in a ``tf.GradientTape`` loop, so Keras 2 and Keras 3
share it) and writes:

* ``MODEL_OUT`` (.keras or .h5), ``<root>_darknet.json`` (the head with the anchors and class
  count used, readable by ``yolo-detect``), ``<root>_anchors.txt``, ``<root>_classes.txt``;
* checkpoints next to it, each replaced atomically: ``<root>.ckpt.weights.h5`` (model
  weights), ``<root>.ckpt.optimizer.npz`` (optimizer state) and ``<root>.ckpt.json`` (the
  epoch just finished, the loss history and the settings). ``resume=True`` continues from
  them.

Images are resized to the network input (bilinear, no letterbox, as ``yolo-detect`` does by
default) and scaled to [0, 1]; boxes are relative to the image so they need no change.

``freeze_body``: only the head conv trains; BatchNorm layers then run on their stored
statistics. Otherwise the whole network trains (BatchNorm on batch statistics) and, at the end,
each BatchNorm's stored mean and variance are re-estimated on the training images with the
final weights (``recalibrate_bn``), so inference sees what training saw.

``overfit=N``: a sanity check (YAD2K's ``train_overfit``): train on the first N images only,
all in one batch, in a fixed order.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .dataset import DatasetError, open_dataset
from .loss import batch_targets, corner_boxes_to_relative, yolo_loss_terms
from core.atomic import write_with

CKPT_FORMAT = "keras2metal-yolo-train"


class TrainError(ValueError):
    """A training setup problem (model/anchors/classes/dataset mismatch, bad checkpoint)."""


@dataclass
class TrainConfig:
    model: str
    data: str
    out: str
    anchors: list | None = None  # flat [w0, h0, w1, h1, ...] in grid cells; None: the model's
    classes: list | None = None  # class names; None: the dataset's
    epochs: int = 10
    batch_size: int = 8
    learning_rate: float = 1e-3
    freeze_body: bool = False
    overfit: int | None = None
    resume: bool = False
    seed: int = 0
    new_head: bool = False
    rescore: bool = False
    checkpoint_every: int = 1
    recalibrate_bn: bool = True
    size: tuple | None = None  # (h, w) for models of free input size
    max_boxes: int | None = None
    progress: bool = True
    log: object = field(default=print, repr=False)

    def fingerprint(self, model_channels, net_size) -> dict:
        return dict(anchors=[float(v) for v in self.anchors], classes=list(self.classes),
                    freeze_body=bool(self.freeze_body), overfit=self.overfit,
                    batch_size=int(self.batch_size), net_size=list(net_size),
                    model_channels=int(model_channels), rescore=bool(self.rescore))


# ----------------------------------------------------------------------------- files

def output_root(path) -> str:
    root, ext = os.path.splitext(os.fspath(path))
    return root if ext.lower() in (".h5", ".keras", ".hdf5") else os.fspath(path)


def checkpoint_paths(out) -> dict:
    root = output_root(out)
    return dict(weights=root + ".ckpt.weights.h5", optimizer=root + ".ckpt.optimizer.npz",
                state=root + ".ckpt.json")


def _write_text(path, text):
    def w(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    write_with(path, w)


def _optimizer_variables(opt) -> list:
    v = opt.variables
    return list(v() if callable(v) else v)


def save_checkpoint(model, opt, out, state: dict):
    """Weights, optimizer state, then the JSON (written last: it names a complete checkpoint)."""
    paths = checkpoint_paths(out)
    write_with(paths["weights"], lambda tmp: model.save_weights(tmp), suffix=".weights.h5")
    arrays = {f"v{i:05d}": np.asarray(v) for i, v in enumerate(_optimizer_variables(opt))}

    def write_npz(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    write_with(paths["optimizer"], write_npz, suffix=".npz")
    _write_text(paths["state"], json.dumps(dict(state, format=CKPT_FORMAT), indent=2) + "\n")


def load_checkpoint_state(out) -> dict | None:
    paths = checkpoint_paths(out)
    if not os.path.exists(paths["state"]):
        return None
    try:
        with open(paths["state"], encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError) as exc:
        raise TrainError(f"{paths['state']}: cannot read the checkpoint ({exc})") from None
    if state.get("format") != CKPT_FORMAT:
        raise TrainError(f"{paths['state']}: not a yolo-train checkpoint")
    for key in ("weights", "optimizer"):
        if not os.path.exists(paths[key]):
            raise TrainError(f"{paths[key]}: missing; the checkpoint is incomplete (delete "
                             f"{paths['state']} to start over)")
    return state


def restore_checkpoint(model, opt, out):
    import tensorflow as tf

    paths = checkpoint_paths(out)
    model.load_weights(paths["weights"])
    with np.load(paths["optimizer"]) as data:
        saved = [data[k] for k in sorted(data.files)]
    opt.build(model.trainable_variables)
    current = _optimizer_variables(opt)
    if len(saved) != len(current):
        raise TrainError(f"{paths['optimizer']}: {len(saved)} optimizer variables saved but the "
                         f"optimizer has {len(current)}; the checkpoint is from another setup")
    for var, value in zip(current, saved):
        if tuple(var.shape) != value.shape:
            raise TrainError(f"{paths['optimizer']}: optimizer variable shape {value.shape} != "
                             f"{tuple(var.shape)}")
        var.assign(tf.convert_to_tensor(value, dtype=var.dtype))


# ----------------------------------------------------------------------------- model

def model_anchors(model_path) -> list | None:
    """The anchors a converted model carries: ``<root>_darknet.json`` or ``<root>_anchors.txt``."""
    from core.yolo.detect import read_anchors

    root = output_root(model_path)
    meta_path = root + "_darknet.json"
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        heads = meta.get("heads") or []
        if heads and heads[0].get("kind") == "region":
            return [float(v) for pair in heads[0]["anchors"] for v in pair]
    if os.path.exists(root + "_anchors.txt"):
        return read_anchors(root + "_anchors.txt")
    return None


def load_source_meta(model_path) -> dict | None:
    path = output_root(model_path) + "_darknet.json"
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def head_layer(model):
    from core.kerasenv import keras

    if len(model.outputs) != 1:
        raise TrainError(f"the model has {len(model.outputs)} outputs; yolo-train retrains "
                         "single-head YOLOv2 ([region]) models")
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Conv2D):
        raise TrainError(f"the model's last layer {last.name!r} is a {type(last).__name__}, not "
                         "the Conv2D detection head a converted YOLOv2 model ends with")
    return last


def with_new_head(model, filters: int, seed: int = 0):
    """The model with its last Conv2D replaced by a fresh ``filters``-channel conv (same kernel
    size, stride, padding and name; small normal kernel, zero bias)."""
    from core.kerasenv import keras

    old = head_layer(model)
    new = keras.layers.Conv2D(filters, old.kernel_size, strides=old.strides, padding=old.padding,
                              use_bias=True, name=old.name,
                              kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed),
                              bias_initializer="zeros")
    out = new(old.input)
    return keras.Model(model.inputs, out, name=model.name)


def freeze_body(model, freeze: bool):
    head = model.layers[-1]
    for layer in model.layers:
        layer.trainable = (layer is head) or not freeze


def recalibrate_batchnorm(model, batches) -> int:
    """Re-estimate every BatchNormalization's moving mean/variance as the average of the batch
    statistics over ``batches`` (each an input array), with the current weights. Returns the
    number of BatchNorm layers updated."""
    from core.kerasenv import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
           and layer.trainable]
    if not bns:
        return 0
    saved = [bn.momentum for bn in bns]
    try:
        for i, x in enumerate(batches, start=1):
            for bn in bns:
                bn.momentum = (i - 1) / i  # running average over the batches seen so far
            model(x, training=True)
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
    return len(bns)


# ----------------------------------------------------------------------------- data

class Batches:
    """Decoded, resized images and YOLO targets for index lists (cached when small)."""

    def __init__(self, ds, net_size, grid, anchors, label_map, max_boxes, cache_limit=1 << 30):
        self.ds, self.net_size, self.grid, self.anchors = ds, net_size, grid, anchors
        self.label_map, self.max_boxes = label_map, max_boxes
        h, w = net_size
        self.cache = {} if len(ds) * h * w * 3 * 4 <= cache_limit else None

    def item(self, i):
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        from PIL import Image

        rec = self.ds[i]
        try:
            img = rec.image()
        except OSError as exc:
            raise DatasetError(f"{self.ds.path}: image {i} ({rec.filename}) cannot be decoded "
                               f"({exc})") from None
        h, w = self.net_size
        x = np.asarray(img.resize((w, h), Image.BILINEAR), np.float32) / 255.0
        labels = self.label_map[rec.labels] if len(rec.labels) else rec.labels
        boxes = corner_boxes_to_relative(rec.boxes, labels, rec.width, rec.height)
        out = (x, boxes)
        if self.cache is not None:
            self.cache[i] = out
        return out

    def batch(self, indices):
        items = [self.item(i) for i in indices]
        x = np.stack([it[0] for it in items])
        tb, mask, match = batch_targets([it[1] for it in items], self.anchors, self.grid,
                                        self.max_boxes)
        return x, tb, mask, match


def label_map_for(ds, classes) -> np.ndarray:
    """Dataset label index -> index in ``classes`` (by name); unknown names raise."""
    index = {n: i for i, n in enumerate(classes)}
    mapping = np.full(len(ds.classes), -1, np.int32)
    for k, name in enumerate(ds.classes):
        mapping[k] = index.get(name, -1)
    return mapping


def scan_labels(ds, mapping, classes, indices) -> int:
    """Check every used label maps to a class; return the most boxes in one image."""
    most = 1
    for i in indices:
        labels = ds[i].labels
        most = max(most, len(labels))
        bad = [int(k) for k in labels if k < 0 or k >= len(mapping) or mapping[k] < 0]
        if bad:
            name = ds.classes[bad[0]] if 0 <= bad[0] < len(ds.classes) else f"label {bad[0]}"
            raise TrainError(f"{ds.path}: image {i} has an object of class {name!r}, which is not "
                             f"in the classes given ({', '.join(classes)})")
    return most


# ----------------------------------------------------------------------------- training

def _meta_for(model, cfg: TrainConfig, src_meta, anchors, classes, grid, net_size):
    from core.darknet.converter import DarknetMeta

    pairs = np.asarray(anchors, np.float64).reshape(-1, 2).tolist()
    head_name = model.layers[-1].name
    head = dict(kind="region", layer=None, output=0, output_name=head_name, classes=len(classes),
                num=len(pairs), anchors=pairs, anchor_units="grid", coords=4, softmax=True,
                tree=None, grid=list(grid))
    src_head = ((src_meta or {}).get("heads") or [{}])[0]
    if src_head.get("kind") == "region":
        head["layer"] = src_head.get("layer")
    h, w = net_size
    fixed = model.inputs[0].shape[1] is not None
    return DarknetMeta(cfg=(src_meta or {}).get("cfg", os.path.basename(cfg.model)),
                       input_shape=[h if fixed else None, w if fixed else None, 3],
                       net_size=[h, w], floats=int(model.count_params()),
                       header=(src_meta or {}).get("header"), heads=[head],
                       outputs=[head_name], classes=len(classes),
                       reorg=(src_meta or {}).get("reorg", "darknet"))


def train(cfg: TrainConfig) -> dict:
    """Run training as configured; returns a summary dict (paths, epochs, losses, seconds)."""
    import tensorflow as tf

    from core.darknet.converter import save_converted
    from core.errors import ConversionError
    from core.kerasenv import KERAS3, keras
    from core.zoo import load_model_file

    say = cfg.log or (lambda *a: None)
    t0 = time.perf_counter()
    if KERAS3 and keras.backend.backend() != "tensorflow":
        raise TrainError(f"yolo-train needs the TensorFlow backend (KERAS_BACKEND is "
                         f"{keras.backend.backend()!r})")
    if cfg.epochs < 1:
        raise TrainError(f"--epochs must be at least 1, not {cfg.epochs}")
    if cfg.batch_size < 1:
        raise TrainError(f"--batch-size must be at least 1, not {cfg.batch_size}")
    if os.path.splitext(cfg.out)[1].lower() not in (".keras", ".h5"):
        raise TrainError(f"{cfg.out}: the output model must end in .keras or .h5")

    ds = open_dataset(cfg.data)
    classes = list(cfg.classes) if cfg.classes else list(ds.classes)
    if len(set(classes)) != len(classes):
        raise TrainError("the class names contain duplicates")
    if cfg.anchors is None:
        cfg.anchors = model_anchors(cfg.model)
        if cfg.anchors is None:
            raise TrainError(f"{cfg.model}: no <model>_darknet.json or <model>_anchors.txt next to "
                             "it; pass --anchors FILE")
    anchors = [float(v) for v in cfg.anchors]
    if not anchors or len(anchors) % 2:
        raise TrainError(f"{len(anchors)} anchor numbers; expected (width, height) pairs")
    if min(anchors) <= 0:
        raise TrainError("anchors must be positive (width, height in grid cells)")
    cfg.classes = classes
    n_anchors, n_classes = len(anchors) // 2, len(classes)
    filters = n_anchors * (5 + n_classes)

    try:
        model = load_model_file(cfg.model)
    except ConversionError as exc:
        raise TrainError(str(exc)) from None
    head = head_layer(model)
    if cfg.new_head or head.filters != filters:
        if head.filters != filters:
            say(f"new head: {head.name} {head.filters} -> {filters} filters "
                f"({n_anchors} anchors x ({n_classes} classes + 5))")
        model = with_new_head(model, filters, cfg.seed)
    freeze_body(model, cfg.freeze_body)

    in_hw = tuple(model.inputs[0].shape[1:3])
    if None in in_hw:
        if cfg.size is None:
            raise TrainError("the model accepts any input size; give the training size (--size)")
        in_hw = tuple(int(v) for v in cfg.size)
    net_size = (int(in_hw[0]), int(in_hw[1]))
    out_shape = model.compute_output_shape((1, net_size[0], net_size[1], 3))
    grid = (int(out_shape[1]), int(out_shape[2]))

    indices = list(range(len(ds)))
    if not indices:
        raise TrainError(f"{cfg.data}: the dataset is empty")
    batch_size = cfg.batch_size
    if cfg.overfit:
        if cfg.overfit < 1:
            raise TrainError(f"--overfit must be at least 1, not {cfg.overfit}")
        indices = indices[:cfg.overfit]
        batch_size = len(indices)
    mapping = label_map_for(ds, classes)
    most = scan_labels(ds, mapping, classes, indices)
    max_boxes = cfg.max_boxes or most
    batches = Batches(ds, net_size, grid, anchors, mapping, max_boxes)

    opt = keras.optimizers.Adam(learning_rate=cfg.learning_rate)
    fingerprint = cfg.fingerprint(filters, net_size)
    start_epoch, history = 1, []
    if cfg.resume:
        state = load_checkpoint_state(cfg.out)
        if state is None:
            say("no checkpoint to resume from; starting at epoch 1")
        else:
            diff = {k: (state["settings"].get(k), v) for k, v in fingerprint.items()
                    if state["settings"].get(k) != v}
            if diff:
                raise TrainError(f"{checkpoint_paths(cfg.out)['state']}: the checkpoint was made "
                                 f"with other settings {sorted(diff)}; use the same ones or "
                                 "train without --resume")
            restore_checkpoint(model, opt, cfg.out)
            start_epoch, history = int(state["epoch"]) + 1, list(state.get("history", []))
            say(f"resuming after epoch {state['epoch']}")

    scales = dict(rescore=cfg.rescore)
    trainable = model.trainable_variables
    if start_epoch == 1:
        opt.build(trainable)  # variables outside tf.function (the first trace must not make them)

    @tf.function(reduce_retracing=True)
    def step(x, tb, mask, match):
        with tf.GradientTape() as tape:
            y = model(x, training=True)
            terms = yolo_loss_terms(y, tb, mask, match, anchors, n_classes, **scales)
            loss = terms["total"]
            if model.losses:
                loss = loss + tf.add_n([tf.cast(v, tf.float32) for v in model.losses])
        grads = tape.gradient(loss, trainable)
        opt.apply_gradients(zip(grads, trainable))
        return terms

    from tqdm import tqdm

    epochs_run = 0
    bar = tqdm(range(start_epoch, cfg.epochs + 1), desc="yolo-train", unit="epoch",
               disable=not cfg.progress or cfg.epochs - start_epoch < 1)
    for epoch in bar:
        order = list(indices)
        if not cfg.overfit:
            np.random.default_rng([cfg.seed, epoch]).shuffle(order)
        sums, n = {}, 0
        for s in range(0, len(order), batch_size):
            x, tb, mask, match = batches.batch(order[s:s + batch_size])
            terms = step(tf.constant(x), tf.constant(tb), tf.constant(mask), tf.constant(match))
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
        epoch_loss = {k: v / n for k, v in sums.items()}
        history.append(dict(epoch=epoch, **{k: round(v, 6) for k, v in epoch_loss.items()}))
        bar.set_postfix(loss=f"{epoch_loss['total']:.4f}")
        epochs_run += 1
        if epoch % max(cfg.checkpoint_every, 1) == 0 or epoch == cfg.epochs:
            save_checkpoint(model, opt, cfg.out, dict(epoch=epoch, history=history,
                                                      settings=fingerprint,
                                                      source_model=os.path.abspath(cfg.model),
                                                      data=os.path.abspath(cfg.data)))

    recalibrated = 0
    if cfg.recalibrate_bn and not cfg.freeze_body:
        chunks = [indices[s:s + batch_size] for s in range(0, len(indices), batch_size)]
        recalibrated = recalibrate_batchnorm(model, (tf.constant(batches.batch(c)[0]) for c in chunks))

    meta = _meta_for(model, cfg, load_source_meta(cfg.model), anchors, classes, grid, net_size)
    written = save_converted(model, meta, cfg.out)
    written["classes"] = output_root(cfg.out) + "_classes.txt"
    _write_text(written["classes"], "\n".join(classes) + "\n")
    written.update({f"checkpoint_{k}": v for k, v in checkpoint_paths(cfg.out).items()})
    ds.close()
    final = history[-1] if history else None
    summary = dict(written=written, epochs_run=epochs_run, last_epoch=cfg.epochs,
                   final_loss=final, recalibrated_bn_layers=recalibrated,
                   seconds=round(time.perf_counter() - t0, 3), classes=classes, anchors=anchors,
                   net_size=list(net_size), grid=list(grid),
                   trainable_weights=int(sum(int(np.prod(v.shape)) for v in trainable)))
    say(f"trained {epochs_run} epoch(s); final loss "
        f"{final['total'] if final else float('nan'):.4f}; wrote {cfg.out}")
    return summary
