"""The preprocessing families: what each Keras family's ``preprocess_input`` does to an RGB image
in [0, 1] (Forge's Resize output), as the manifest's preprocessing steps.

* ``caffe`` (VGG, ResNet v1): BGR, ×255, minus the ImageNet means (in BGR order);
* ``tf`` (Inception, Xception, MobileNet v1/v2, ResNet v2, NASNet): ``2x - 1``;
* ``torch`` (DenseNet): ``(x - mean) / std`` per channel with the ImageNet mean and std;
* ``raw`` (EfficientNet, EfficientNetV2, MobileNetV3, ConvNeXt): the model takes 0..255 and
  normalises inside (``Rescaling``/``Normalization`` layers, folded into the preprocessing by the
  converter);
* ``yolo``/``none``: RGB in [0, 1].

A model with a one-channel input gets Forge's ``RGB2Gray`` first (``gray``: luminance × 255, see
core/forge_ops/kernels/rgb2gray.py), then the family's mapping of 0..255 gray values.
"""
import numpy as np

from core.errors import ConversionError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FAMILIES = {
    "caffe": [{"op": "swap_channels", "permute": [2, 1, 0], "tensor": "rgb2bgr"},
              {"op": "subtract_mean", "scale": 255.0, "mean": [103.939, 116.779, 123.68],
               "tensor": "subtract_mean"}],
    "tf": [{"op": "linear", "a": 2.0, "b": -1.0, "tensor": "input_scale"}],
    "torch": [{"op": "channel_affine", "scale": [1.0 / s for s in IMAGENET_STD],
               "offset": [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)],
               "tensor": "input_normalize"}],
    "raw": [{"op": "linear", "a": 255.0, "b": 0.0, "tensor": "input_scale"}],
    "yolo": [],
    "none": [],
}

# After RGB2Gray (0..255): the same ranges for one channel.
GRAY = {"op": "gray", "tensor": "rgb2gray"}
GRAY_FAMILIES = {
    "tf": [{"op": "linear", "a": 2.0 / 255.0, "b": -1.0, "tensor": "input_scale"}],
    "raw": [],
    "yolo": [{"op": "linear", "a": 1.0 / 255.0, "b": 0.0, "tensor": "input_scale"}],
    "none": [{"op": "linear", "a": 1.0 / 255.0, "b": 0.0, "tensor": "input_scale"}],
}


# The tensors the preprocessing steps of some family put in a builder: a dump of one the
# manifest has not was made by a conversion with other preprocessing.
PREPROCESSING_TENSORS = frozenset(step["tensor"] for steps in (*FAMILIES.values(),
                                                                *GRAY_FAMILIES.values(), [GRAY])
                                  for step in steps)


def family_steps(family: str, channels: int, model: str) -> list:
    """The preprocessing steps of ``family`` for a model input of ``channels`` channels."""
    if family not in FAMILIES:
        raise ConversionError(f"model {model!r}: unknown preprocessing family {family!r}; use one "
                              f"of {', '.join(FAMILIES)}")
    if channels == 3:
        return [dict(step) for step in FAMILIES[family]]
    if channels == 1:
        if family not in GRAY_FAMILIES:
            raise ConversionError(
                f"model {model!r} has a one-channel (grayscale) input, but preprocessing "
                f"{family!r} is defined for RGB only; use --preprocessing "
                + ", ".join(GRAY_FAMILIES) + " (gray values 0..255 mapped like that family)")
        return [dict(GRAY)] + [dict(step) for step in GRAY_FAMILIES[family]]
    raise ConversionError(
        f"model {model!r} takes {channels} input channels; Forge feeds a network the 3-channel "
        "RGB image of its input texture (Resize always makes 3 channels, alpha never reaches the "
        "network), and the fork's RGB2Gray makes 1: rebuild the model with a 3-channel (RGB) or "
        "1-channel (grayscale) input")


def apply_step(x: np.ndarray, step) -> np.ndarray:
    """One manifest preprocessing step (typed or its JSON) on float32 images (..., H, W, C), with
    Forge's arithmetic in float32: the one numpy form golden capture, seeding and tests share."""
    from core.manifest import preprocessing_step

    step = preprocessing_step(step)
    if step.op == "swap_channels":
        x = x[..., list(step.permute)]
    elif step.op == "subtract_mean":
        x = x * np.float32(step.scale) - np.asarray(step.mean, np.float32)
    elif step.op == "linear":
        x = np.float32(step.a) * x + np.float32(step.b)
    elif step.op == "channel_affine":
        x = x * np.asarray(step.scale, np.float32) + np.asarray(step.offset, np.float32)
    elif step.op == "gray":
        from core.forge_ops.kernels.rgb2gray import luminance255   # Forge's RGB2Gray

        x = luminance255(x)
    return np.ascontiguousarray(x, dtype=np.float32)


def apply_steps(x: np.ndarray, steps: list) -> np.ndarray:
    """All the steps, in order: what Keras sees."""
    for step in steps:
        x = apply_step(x, step)
    return np.asarray(x, dtype=np.float32)
