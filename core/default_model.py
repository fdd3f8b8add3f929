"""The embedded default model: a small shape classifier trained here, on images drawn here.

``python -m core.default_model train --out DIR`` draws a seeded, labelled set of 32×32 RGB images
of eight procedural shape classes, trains a small network on it (under a minute on a laptop CPU)
and writes ``DIR/shapes_net.keras``, a labelled sample set ``DIR/images/*.png`` with
``DIR/labels.json``, and ``DIR/training.json`` (accuracies, seed, epochs).  The shipped copy lives
in ``core/data/default_model/`` and is the zoo entry ``default`` (``DEFAULT``, Forge name
``shapes_net``, preprocessing family ``tf``): ``--weights trained`` loads these weights,
``--weights random`` re-initialises the same architecture from ``--seed``.

The network uses every structural feature the converter and the device must get right on a
small budget: a strided convolution with BatchNorm, a depthwise-separable block with a residual
``Add``, an Inception-style ``Concatenate`` of three branches (1×1 convolution, 3×3 convolution,
max pooling), a strided depthwise convolution, global average pooling and a softmax classifier.

``python -m core.default_model samples --out DIR [--count N]`` writes only the sample images.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

SIZE = 32
CLASSES = ("circle", "square", "triangle", "cross", "ring", "horizontal_bars", "vertical_bars",
           "diagonal_stripes")
DATA_DIR = Path(__file__).resolve().parent / "data" / "default_model"
MODEL_FILE = "shapes_net.keras"
WEIGHTS_FILE = "shapes_net.weights.npz"   # the same weights by layer name, for Keras 2
FORGE_NAME = "shapes_net"
SEED = 2024


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


# -- the network ----------------------------------------------------------------------------

def build_model(seed: int = SEED, classes: int = len(CLASSES)):
    """The shapes_net architecture (untrained, seeded initial weights)."""
    from core.kerasenv import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)                                          # 16×16×16
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="block1_dw")(x)
    y = L.BatchNormalization(name="block1_dw_bn")(y)
    y = L.ReLU(name="block1_dw_relu")(y)
    y = L.Conv2D(16, 1, use_bias=False, name="block1_pw")(y)
    y = L.BatchNormalization(name="block1_pw_bn")(y)
    x = L.Add(name="block1_add")([x, y])
    x = L.ReLU(name="block1_out")(x)
    a = L.Conv2D(16, 1, activation="relu", name="mix_a")(x)
    b = L.Conv2D(16, 3, padding="same", use_bias=False, name="mix_b")(x)
    b = L.BatchNormalization(name="mix_b_bn")(b)
    b = L.ReLU(name="mix_b_relu")(b)
    c = L.MaxPooling2D(3, strides=1, padding="same", name="mix_pool")(x)
    x = L.Concatenate(name="mix")([a, b, c])                                 # 16×16×48
    x = L.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="reduce_conv")(x)
    x = L.BatchNormalization(name="reduce_bn")(x)
    x = L.ReLU(name="reduce_relu")(x)                                        # 8×8×32
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="block2_dw")(x)
    y = L.BatchNormalization(name="block2_dw_bn")(y)
    y = L.ReLU(name="block2_dw_relu")(y)
    y = L.Conv2D(32, 1, use_bias=False, name="block2_pw")(y)
    y = L.BatchNormalization(name="block2_pw_bn")(y)
    x = L.Add(name="block2_add")([x, y])
    x = L.ReLU(name="block2_out")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    out = L.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="shapes_net")


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


def shipped_model_path() -> Path:
    return DATA_DIR / MODEL_FILE


def save_portable_weights(model, path) -> None:
    """Every layer's weights by layer name (npz): readable by Keras 2 and 3 alike."""
    from core.atomic import write_with

    arrays = {f"{layer.name}/{i}": w for layer in model.layers
              for i, w in enumerate(layer.get_weights())}
    write_with(path, lambda tmp: np.savez(open(tmp, "wb"), **arrays), suffix=".npz")


def load_shipped():
    """The shipped trained model: the .keras file under Keras 3; under Keras 2, which cannot read
    Keras 3's format, the architecture rebuilt here with the portable weights."""
    from core.errors import ConversionError
    from core.kerasenv import KERAS3, keras

    path = shipped_model_path() if KERAS3 else DATA_DIR / WEIGHTS_FILE
    if not path.is_file():
        raise ConversionError(f"{path}: the embedded default model is missing; re-create it with "
                              "`python -m core.default_model train --out core/data/default_model`")
    if KERAS3:
        return keras.models.load_model(str(path), compile=False)
    model = build_model()
    with np.load(path) as arrays:
        for layer in model.layers:
            count = len(layer.weights)
            if count:
                layer.set_weights([arrays[f"{layer.name}/{i}"] for i in range(count)])
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.default_model",
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
