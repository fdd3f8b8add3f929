"""Training the embedded default model (``core.default_model``) on images drawn here.

``python -m training.shapes_net train --out DIR`` draws a seeded, labelled set of 32×32 RGB
images of eight procedural shape classes, trains the shapes_net architecture on it (under a
minute on a laptop CPU) and writes ``DIR/shapes_net.keras`` (+ the portable ``.weights.npz``), a
labelled sample set ``DIR/images/*.png`` with ``DIR/labels.json``, and ``DIR/training.json``
(accuracies, seed, epochs).

``python -m training.shapes_net samples --out DIR [--count N]`` writes only the sample images.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from core.default_model import (CLASSES, DATA_DIR, MODEL_FILE, SEED, SIZE, WEIGHTS_FILE,
                                build_model, save_portable_weights)


# -- procedural images ----------------------------------------------------------------------

def _colours(rng):
    """Foreground and background colours at least 0.35 apart in mean brightness or hue."""
    while True:
        fg, bg = rng.uniform(0.0, 1.0, 3), rng.uniform(0.0, 1.0, 3)
        if np.abs(fg - bg).sum() > 0.9:
            return fg, bg


def _mask(kind: str, rng, size: int = SIZE) -> np.ndarray:
    """Boolean H×W mask of one shape of class ``kind`` at a random place, size and phase."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    r = rng.uniform(0.22, 0.34) * size
    if kind == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2
    if kind == "ring":
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        width = rng.uniform(0.22, 0.35) * r
        return (d <= r) & (d >= r - width)
    if kind == "square":
        angle = rng.uniform(-0.3, 0.3)
        u = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
        v = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    if kind == "triangle":
        # apex up: inside when below the two sloped edges and above the base
        top, base = cy - r, cy + r * 0.8
        half = (yy - top) / (base - top) * r
        return (yy >= top) & (yy <= base) & (np.abs(xx - cx) <= half)
    if kind == "cross":
        arm = rng.uniform(0.22, 0.32) * r
        return ((np.abs(xx - cx) <= arm) & (np.abs(yy - cy) <= r)) | \
               ((np.abs(yy - cy) <= arm) & (np.abs(xx - cx) <= r))
    period = rng.uniform(5.0, 9.0)
    phase = rng.uniform(0.0, period)
    if kind == "horizontal_bars":
        return ((yy + phase) % period) < period / 2
    if kind == "vertical_bars":
        return ((xx + phase) % period) < period / 2
    if kind == "diagonal_stripes":
        sign = rng.choice((-1.0, 1.0))
        return ((xx + sign * yy + phase) % (period * 1.4)) < period * 0.7
    raise ValueError(f"unknown shape class {kind!r}; known: {', '.join(CLASSES)}")


def draw(label: int, rng, size: int = SIZE) -> np.ndarray:
    """One uint8 H×W×3 RGB image of class ``CLASSES[label]`` (colours, place and noise random)."""
    fg, bg = _colours(rng)
    mask = _mask(CLASSES[label], rng, size)[..., None]
    gradient = rng.uniform(-0.15, 0.15) * (np.arange(size, dtype=np.float32) / size - 0.5)
    image = np.where(mask, fg, bg) + gradient[None, :, None]
    image = image + rng.normal(0.0, rng.uniform(0.01, 0.06), image.shape)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def dataset(count: int, seed: int, size: int = SIZE):
    """(uint8 images N×H×W×3, int labels N), classes balanced and shuffled, from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(CLASSES)
    rng.shuffle(labels)
    images = np.stack([draw(int(k), rng, size) for k in labels])
    return images, labels.astype(np.int64)


def preprocess(images_u8: np.ndarray) -> np.ndarray:
    """The ``tf`` family: RGB 8-bit → [0, 1] → [-1, 1] (what the manifest's preprocessing does)."""
    return images_u8.astype(np.float32) / np.float32(255.0) * np.float32(2.0) - np.float32(1.0)


def train(out_dir, *, seed: int = SEED, train_count: int = 4000, test_count: int = 800,
          epochs: int = 8, samples_per_class: int = 4, log=print) -> dict:
    """Draw the data, train, and write the model, the sample set and ``training.json``."""
    from core.kerasenv import keras

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    x_train, y_train = dataset(train_count, seed)
    x_test, y_test = dataset(test_count, seed + 1)
    model = build_model(seed)
    steps = epochs * -(-train_count // 64)
    schedule = keras.optimizers.schedules.CosineDecay(4e-3, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(preprocess(x_train), y_train, batch_size=64, epochs=epochs, verbose=0,
              validation_data=(preprocess(x_test), y_test),
              callbacks=[_EpochLog(log)])
    _, test_acc = model.evaluate(preprocess(x_test), y_test, verbose=0)
    _, train_acc = model.evaluate(preprocess(x_train[:1000]), y_train[:1000], verbose=0)

    from core.atomic import atomic_path
    model_path = out_dir / MODEL_FILE
    with atomic_path(model_path) as tmp:
        model.save(str(tmp))
    save_portable_weights(model, out_dir / WEIGHTS_FILE)
    labels = write_samples(out_dir, seed=seed + 2, per_class=samples_per_class)
    xs = np.stack([np.asarray(_read_png(out_dir / "images" / f)) for f in labels["labels"]])
    probs = model.predict(preprocess(xs), verbose=0)
    ys = np.array(list(labels["labels"].values()))
    sample_acc = float((probs.argmax(1) == ys).mean())
    info = {"seed": seed, "epochs": epochs, "train_images": train_count,
            "test_images": test_count, "train_accuracy": round(float(train_acc), 4),
            "test_accuracy": round(float(test_acc), 4), "sample_accuracy": round(sample_acc, 4),
            "classes": list(CLASSES), "input_size": [SIZE, SIZE], "preprocessing": "tf",
            "parameters": int(model.count_params()), "seconds": round(time.perf_counter() - start, 1),
            "keras": keras.__version__}
    (out_dir / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"test accuracy {test_acc:.4f}, sample accuracy {sample_acc:.4f}; wrote {model_path}")
    return info


class _EpochLog:
    """A tiny Keras callback (built lazily so importing this module needs no Keras)."""

    def __new__(cls, log):
        from core.kerasenv import keras

        class EpochLog(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                log(f"epoch {epoch + 1}: loss {logs.get('loss', 0):.4f} accuracy "
                    f"{logs.get('accuracy', 0):.4f} val_accuracy {logs.get('val_accuracy', 0):.4f}")
        return EpochLog()


def _read_png(path):
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def write_samples(out_dir, *, seed: int = SEED + 2, per_class: int = 4) -> dict:
    """``out_dir/images/<class>_<k>.png`` and ``out_dir/labels.json``; returns the labels dict."""
    from PIL import Image

    out_dir = Path(out_dir)
    folder = out_dir / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = {}
    for k in range(per_class):
        for label, name in enumerate(CLASSES):
            file_name = f"{name}_{k:02d}.png"
            Image.fromarray(draw(label, rng)).save(folder / file_name, optimize=True)
            labels[file_name] = label
    labels = dict(sorted(labels.items()))
    doc = {"classes": list(CLASSES), "labels": labels}
    (out_dir / "labels.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.shapes_net",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="draw the data set, train, write model + samples")
    p.add_argument("--out", default=str(DATA_DIR), help=f"output folder (default {DATA_DIR})")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--train-count", type=int, default=4000)
    s = sub.add_parser("samples", help="write only the labelled sample images")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=SEED + 2)
    s.add_argument("--count", type=int, default=4, help="images per class")
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args.out, seed=args.seed, epochs=args.epochs, train_count=args.train_count)
    else:
        doc = write_samples(args.out, seed=args.seed, per_class=args.count)
        print(f"wrote {len(doc['labels'])} images and labels.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
