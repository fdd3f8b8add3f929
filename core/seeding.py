"""Seeded random weights that behave like trained ones, so offline tests exercise real numerics.

Plain random initialisers give BatchNorm layers identity statistics (folding then tests nothing)
and let activations vanish or overflow float16 in deep nets.  This initialiser walks the graph once
on a seeded calibration batch (layer-sequential unit-variance initialisation): every kernel is
drawn from the seed and rescaled so its pre-activation has unit spread, every BatchNorm gets the
statistics it actually sees (perturbed, so folding is not the identity), random gamma and beta,
and every bias is non-zero.  The classifier's logits get a wider spread so top-5 is well separated.

Two things keep deep networks (EfficientNetB4 and up: thirty-odd residual blocks with
squeeze-and-excitation gates) as tame on a photograph as trained ones are.  The calibration batch
spans scales, as natural images do (blocky noise at two cell sizes and two 1/f "pink" noise
images), so BatchNorm statistics are not fitted to one texture; calibrated on one texture, a
photo's activations grew ~2,000-fold through EfficientNetB4 and a 1e-3 input nudge moved its
last block by 85%.  And a residual branch starts at a quarter of the spread it would otherwise
have (its last BatchNorm's gamma and beta, or its last kernel, scaled by
``RESIDUAL_BRANCH_SCALE``), as in trained residual networks, where each block adds a correction
to the stream rather than a second signal of the same size; the nudge then moves the last block
by ~5%.  The rule looks at an Add's two ends only: a branch ending in a BatchNorm or kernel added
to a shortcut that does not (an activation's or an earlier Add's output) is damped; where both
ends are such layers (a projected shortcut, or the first residual block after one without) or
the model scales the branch itself (Inception-ResNet, ConvNeXt), nothing is.
"""
import numpy as np

from core.kerasenv import keras, variable_name
from core.kerasgraph import INFERENCE_IDENTITIES, layer_calls
from core.preprocessing import FAMILIES, GRAY_FAMILIES, apply_steps

KERNEL_LAYERS = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "Conv2DTranspose"}
LOGIT_SPREAD = 4.0
RESIDUAL_BRANCH_SCALE = 0.25


def _blocky_noise(rng, shape, cell: int) -> np.ndarray:
    h, w, c = shape
    coarse = rng.uniform(0.0, 1.0, (-(-h // cell), -(-w // cell), c))
    image = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)[:h, :w, :]
    return np.clip(image + rng.normal(0.0, 0.05, image.shape), 0.0, 1.0)


def _pink_noise(rng, shape) -> np.ndarray:
    """1/f noise with correlated channels (a shared luminance), stretched to [0, 1]."""
    h, w, c = shape
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    frequency = np.sqrt(fx ** 2 + fy ** 2)
    frequency[0, 0] = 1.0 / max(h, w)

    def field():
        return np.fft.irfft2(np.fft.rfft2(rng.normal(size=(h, w))) / frequency, s=(h, w))

    luminance = field()
    image = np.stack([luminance + 0.3 * field() for _ in range(c)], axis=-1)
    return (image - image.min()) / (image.max() - image.min())


def calibration_batch(shape, family: str, seed: int) -> np.ndarray:
    """Random images in [0, 1] that span scales (see module doc), put through the family's
    preprocessing."""
    rng = np.random.default_rng(seed + 7919)
    images = [_blocky_noise(rng, shape, 8), _blocky_noise(rng, shape, 32),
              _pink_noise(rng, shape), _pink_noise(rng, shape)]
    return preprocess_batch(np.stack(images).astype(np.float32), family)


def preprocess_batch(rgb01: np.ndarray, family: str) -> np.ndarray:
    """Keras ``preprocess_input`` of each family, applied to RGB (or gray) images in [0, 1]."""
    if rgb01.shape[-1] == 1:            # a gray image: what RGB2Gray gives, then the family's
        return apply_steps(rgb01 * np.float32(255.0), GRAY_FAMILIES.get(family, []))
    if family == "caffe":
        return rgb01[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], np.float32)
    if family == "tf":
        return rgb01 * 2.0 - 1.0
    return apply_steps(rgb01, FAMILIES.get(family, []))


def _call(layer, inputs):
    arg = inputs[0] if len(inputs) == 1 else list(inputs)
    try:
        out = layer(arg, training=False)
    except TypeError:
        out = layer(arg)
    if isinstance(out, (list, tuple)):
        return [np.asarray(o) for o in out]
    return [np.asarray(out)]


def _consumers(calls):
    consumers = {}
    for call in calls:
        for tensor in call.inputs:
            consumers.setdefault(tensor, []).append(call)
    return consumers


def _feeds_softmax(call, consumers) -> bool:
    activation = getattr(call.layer, "activation", None)
    if getattr(activation, "__name__", "") == "softmax":
        return True
    for consumer in consumers.get(call.outputs[0], []):
        if consumer.class_name == "Softmax" or (
                consumer.class_name == "Activation"
                and getattr(consumer.layer.activation, "__name__", "") == "softmax"):
            return True
        if consumer.class_name in {"Reshape", "Flatten", "Dropout"}:
            if _feeds_softmax(consumer, consumers):
                return True
    return False


def _residual_branch_ends(calls) -> set:
    """Names of the layers (a BatchNorm or a kernel layer) that end one side of a two-input Add
    whose other side does not end in such a layer (see module doc)."""
    producers = {tensor: call for call in calls for tensor in call.outputs}

    def producer(tensor):
        call = producers.get(tensor)
        while call is not None and call.class_name in INFERENCE_IDENTITIES:
            call = producers.get(call.inputs[0])
        return call

    def ends_branch(call):
        return call is not None and (call.class_name == "BatchNormalization"
                                     or call.class_name in KERNEL_LAYERS)

    branch_ends = set()
    for call in calls:
        if call.class_name != "Add" or len(call.inputs) != 2:
            continue
        sources = [producer(tensor) for tensor in call.inputs]
        ends = [source for source in sources if ends_branch(source)]
        if len(ends) == 1:
            branch_ends.add(ends[0].name)
    return branch_ends


def _fan_in(name: str, shape) -> int:
    if "depthwise" in name:
        return int(np.prod(shape[:2]))
    return int(np.prod(shape[:-1]))


def _draw_kernels(layer, rng):
    values = []
    for var in layer.weights:
        name, shape = var.name.split("/")[-1], tuple(var.shape)
        if "kernel" in name:
            values.append(rng.normal(0.0, np.sqrt(2.0 / max(_fan_in(name, shape), 1)), shape))
        elif "bias" in name:
            values.append(rng.uniform(-0.2, 0.2, shape))
        else:
            values.append(rng.normal(0.0, 0.1, shape))
    layer.set_weights([v.astype(np.float32) for v in values])


def _rescale_to_spread(layer, inputs, target: float):
    """Scale kernel and bias so the layer's pre-activation has standard deviation ``target``."""
    activation = getattr(layer, "activation", None)
    if activation is not None:
        layer.activation = keras.activations.linear
    pre = _call(layer, inputs)[0]
    if activation is not None:
        layer.activation = activation
    spread = float(np.std(pre))
    if not np.isfinite(spread) or spread < 1e-8:
        return
    factor = target / spread
    scaled = []
    for var, value in zip(layer.weights, layer.get_weights()):
        name = var.name.split("/")[-1]
        if "depthwise" in name and layer.__class__.__name__ == "SeparableConv2D":
            scaled.append(value)  # scaling the pointwise kernel is enough
        else:
            scaled.append(value * factor)
    layer.set_weights(scaled)


def _batchnorm_from_statistics(layer, x, rng, scale: float = 1.0):
    axes = tuple(range(x.ndim - 1))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    values = {
        "gamma": rng.uniform(0.6, 1.4, mean.shape) * scale,
        "beta": rng.uniform(-0.3, 0.3, mean.shape) * scale,
        "moving_mean": mean + rng.normal(0.0, 0.1, mean.shape) * np.sqrt(var + 1e-6),
        "moving_variance": var * rng.uniform(0.7, 1.3, var.shape) + 1e-3,
    }
    layer.set_weights([values[variable_name(v)].astype(np.float32)
                       for v in layer.weights])


def _normalization_from_statistics(layer, x):
    """An adaptable Normalization gets the statistics of what it sees, as ``adapt`` would."""
    axes = tuple(range(x.ndim - 1))
    values = {"mean": x.mean(axis=axes), "variance": x.var(axis=axes) + 1e-3,
              "count": np.asarray(x.size // x.shape[-1])}
    layer.set_weights([values[variable_name(v)].reshape(tuple(v.shape))
                       .astype(np.float32) for v in layer.weights])
    layer.finalize_state()             # the layer computes with what its weights now hold


def seeded_init(model, seed: int, family: str = "none") -> None:
    """Overwrite every weight of ``model`` deterministically from ``seed`` (see module doc)."""
    rng = np.random.default_rng(seed)
    calls = layer_calls(model)
    consumers = _consumers(calls)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError("seeded_init needs a model with a fixed input size")
    pending = {tensor: len(readers) for tensor, readers in consumers.items()}
    values = {}
    x = calibration_batch(shape, family, seed)
    branch_ends = _residual_branch_ends(calls)
    for call in calls:
        layer = call.layer
        if call.class_name == "InputLayer":
            values[call.outputs[0]] = x
            continue
        inputs = [values[t] for t in call.inputs]
        scale = RESIDUAL_BRANCH_SCALE if call.name in branch_ends else 1.0
        if call.class_name == "BatchNormalization":
            _batchnorm_from_statistics(layer, inputs[0], rng, scale)
        elif call.class_name == "Normalization" and layer.weights:
            _normalization_from_statistics(layer, inputs[0])
        elif call.class_name in KERNEL_LAYERS:
            _draw_kernels(layer, rng)
            _rescale_to_spread(layer, inputs,
                               LOGIT_SPREAD if _feeds_softmax(call, consumers) else scale)
        elif layer.weights:
            layer.set_weights([rng.normal(0.0, 0.1, tuple(v.shape)).astype(np.float32) + (
                1.0 if "gamma" in v.name or "scale" in v.name else 0.0) for v in layer.weights])
        for tensor, value in zip(call.outputs, _call(layer, inputs)):
            values[tensor] = value
        for tensor in call.inputs:  # free what no later layer reads
            pending[tensor] -= 1
            if pending[tensor] == 0:
                del values[tensor]
