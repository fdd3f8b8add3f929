"""What the phone computes inside its weighted layers but nobody dumps, for the float16 pre-check.

Golden capture records each manifest tensor's Keras counterpart.  A weighted Forge layer (Conv,
PointwConv, DepthwConv, Dense) also holds the value its accumulators produce before a fused
activation, and some weighted layers have no Keras tensor at all.  For every weighted layer this
module computes, per image, from the Keras input of the layer's Keras layer (the original model,
on the golden input path) and the layer's weight files as written:

* ``op(x, W) + b`` — the value before any fused activation: the **pre-activation** when an
  activation is fused (for Keras [conv, bn, relu] the BatchNorm's output, as folded), the
  tensor's own, **undumped** value when it has no Keras reference (the logits before a softmax,
  the depthwise half of a separable convolution, a convolution before an unfused ReLU6);
* ``op(|x|, |W|) + |b|`` — a bound on its **partial sums** in any summation order.

``op`` is the layer's own: a convolution with its Keras layer's strides and padding, a depthwise
convolution, a 1×1 convolution (a separable convolution's pointwise half, a Dense applied to a
feature map), a per-channel scale (a BatchNorm with nothing to fold into) or a matrix product.
The weights come from the files, so what is measured is what MPS is given.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from validation.precheck import Measured, PrecheckError, Surroundings
from core.manifest import TensorEntry

KERNEL_CLASSES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")
ACTIVATION_CLASSES = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")
RERUN = "re-run keras2metal for this model"


def read_weight_file(folder: Path, spec) -> np.ndarray:
    """One weight file of the manifest, float32 in its manifest shape (MPSCNN layout)."""
    path = Path(folder) / spec.file
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise PrecheckError(f"{path}: weight file named by the manifest is missing; {RERUN}") \
            from None
    if size != 4 * int(spec.count):
        raise PrecheckError(f"{path}: {size} bytes, the manifest says {spec.count} float32 "
                            f"values ({4 * int(spec.count)} bytes); {RERUN}")
    return np.fromfile(path, dtype="<f4").reshape(spec.shape)


@dataclass
class WeightedLayer:
    """One weighted Forge layer and how to recompute its accumulators."""
    entry: TensorEntry
    keras_layer: str             # the Keras layer holding the kernel (or the standalone BatchNorm)
    op: str                      # conv, depthwise, scale, dense
    strides: tuple
    padding: str                 # SAME or VALID
    files: dict                  # "weights"/"biases" -> manifest weight entry
    from_tensor: Optional[str]   # the input is this Forge tensor, computed here (pointwise half)
    fused: Optional[tuple]       # (activation, Keras layer) applied inside the layer
    value: Optional[Measured]    # pre-activation or undumped value; None: golden already has it
    bound: Measured

    def arrays(self, folder: Path):
        """(kernel in TensorFlow layout, bias or None) from the weight files."""
        w = read_weight_file(folder, self.files["weights"])
        if self.op == "conv":
            kernel = w.transpose(1, 2, 3, 0)                 # OHWI -> HWIO
        elif self.op == "depthwise":
            kernel = w.transpose(1, 2, 0)[..., None]         # CHW -> HWC1
        elif self.op == "scale":
            kernel = w.reshape(-1)
        else:
            kernel = w.reshape(w.shape[0], -1).T             # [out][h][w][c] -> (h·w·c, out)
        bias = read_weight_file(folder, self.files["biases"]) if "biases" in self.files else None
        return kernel, bias

    def apply(self, x: np.ndarray, kernel: np.ndarray, bias) -> np.ndarray:
        import tensorflow as tf

        if self.op == "dense":
            y = x.reshape(len(x), -1) @ kernel
        elif self.op == "scale":
            y = x * kernel
        elif self.op == "conv":
            y = tf.nn.conv2d(x, kernel, strides=(1, *self.strides, 1), padding=self.padding)
        else:
            y = tf.nn.depthwise_conv2d(x, kernel, strides=(1, *self.strides, 1),
                                       padding=self.padding)
        y = np.asarray(y, dtype=np.float32)
        return y if bias is None else y + bias


def activation_name(layer) -> Optional[str]:
    """The non-linear activation a Keras layer applies, None for linear."""
    cls = type(layer).__name__
    config = layer.get_config()
    if cls == "ReLU":
        cap = config.get("max_value")
        return "relu" if cap is None else ("relu6" if float(cap) == 6.0 else f"relu{cap:g}")
    if cls == "LeakyReLU":
        return "leaky_relu"
    if cls in ("ELU", "PReLU", "Softmax"):
        return cls.lower()
    name = config.get("activation")
    if not isinstance(name, str):                     # a function, or a layer without one
        name = getattr(getattr(layer, "activation", None), "__name__", None)
    return None if name in (None, "linear") else name


def keras_layer(model, entry, name: str):
    try:
        return model.get_layer(name)
    except ValueError:
        raise PrecheckError(f"tensor {entry.name!r}: Keras model {model.name!r} has no layer "
                            f"{name!r}; is the manifest from another model? {RERUN}") from None


def _kernel_layer(model, entry) -> Optional[object]:
    """The Keras layer holding a weighted tensor's kernel (or its standalone BatchNorm), or None
    when none does: a layer the converter adds (NASNet's channel padding, the ImageNet
    normalisation), a Normalization folded from the input path, a LayerNormalization kernel
    (see :func:`unbounded_tensors`)."""
    layers = [keras_layer(model, entry, n) for n in entry.keras_layers or []]
    for layer in layers:
        if type(layer).__name__ in KERNEL_CLASSES:
            return layer
    for layer in layers:
        if type(layer).__name__ == "BatchNormalization":
            return layer
    return None


def unbounded_tensors(manifest, plan: list) -> list:
    """Weighted tensors the plan recomputes no accumulators for (no Keras kernel or BatchNorm
    holds their weights); their golden activations and weight files are still checked."""
    planned = {p.entry.name for p in plan}
    return [entry.name for entry in manifest.tensors
            if entry.op.accumulator is not None and entry.name not in planned]


def fused_activation(model, entry, kernel_layer) -> Optional[tuple]:
    """(activation, Keras layer) the weighted tensor applies inside the layer, or None."""
    if entry.keras_output is None:
        return None
    layer = keras_layer(model, entry, entry.keras_output)
    if layer is not kernel_layer and type(layer).__name__ not in ACTIVATION_CLASSES:
        return None                                  # e.g. [conv, bn]: nothing fused
    activation = activation_name(layer)
    return (activation, layer.name) if activation else None


def _value_measure(entry, kernel_layer, fused) -> Optional[Measured]:
    """The pre-activation or undumped value of a weighted tensor, or None when golden has it."""
    if not entry.reference:
        return Measured(entry, "undumped", "value (no Keras tensor: computed from its input and "
                                           "weight files)")
    if fused is None:
        return None
    activation, name = fused
    names = entry.keras_layers
    if name == kernel_layer.name:
        before = f"Keras layer {name!r} without its activation"
    elif name in names[1:]:
        before = f"output of Keras layer {names[names.index(name) - 1]!r}"
    else:
        before = "its input"
    return Measured(entry, "pre-activation",
                    f"pre-activation ({before}, before the fused {activation})",
                    around=Surroundings(fused=fused))


def plan_weighted_layers(model, manifest) -> list:
    """A :class:`WeightedLayer` per weighted manifest tensor, in topological order."""
    specs = {w.file: w for w in manifest.weights}
    plan = []
    for entry in manifest.tensors:
        accumulator = entry.op.accumulator
        if accumulator is None:
            continue
        layer = _kernel_layer(model, entry)
        if layer is None:
            continue
        cls, config = type(layer).__name__, layer.get_config()
        strides = tuple(int(s) for s in np.broadcast_to(config.get("strides", 1), 2))
        padding = str(config.get("padding", "valid")).upper()
        from_tensor = None
        if accumulator == "dense":
            op = "dense"
        elif accumulator == "pointwise":
            op, strides, padding, from_tensor = "conv", (1, 1), "VALID", entry.inputs[0]
        elif accumulator == "depthwise":
            op = "scale" if cls == "BatchNormalization" else "depthwise"
        else:
            op = "conv"
            if cls == "Dense":                                # a Dense on a feature map: 1×1
                strides, padding = (1, 1), "VALID"
        files = {}
        for name in entry.weights or []:
            if name not in specs:
                raise PrecheckError(f"tensor {entry.name!r} names weight file {name!r}, which "
                                    f"the manifest's weights list lacks; {RERUN}")
            files[specs[name].type] = specs[name]
        if "weights" not in files:
            raise PrecheckError(f"tensor {entry.name!r} ({entry.forge_type}) has no weights "
                                f"file in the manifest; {RERUN}")
        source = from_tensor or (entry.inputs[0] if entry.inputs else "the input")
        fused = fused_activation(model, entry, layer)
        plan.append(WeightedLayer(
            entry=entry, keras_layer=layer.name, op=op, strides=strides, padding=padding,
            files=files, from_tensor=from_tensor, fused=fused,
            value=_value_measure(entry, layer, fused),
            bound=Measured(entry, "partial sums", f"partial sums (Σ|w·x| + |bias|, input "
                                                  f"{source!r})", source=source)))
    return plan


def surroundings(model, manifest, plan: list) -> dict:
    """Tensor → :class:`Surroundings`: its fused activation, the activation all its consumers
    apply (a Forge Activation layer each), and a BatchNorm run after it as a per-channel scale."""
    out = {p.entry.name: Surroundings(fused=p.fused) for p in plan}
    consumers = {}
    for entry in manifest.tensors:
        for name in entry.inputs or []:
            consumers.setdefault(name, []).append(entry)
    for name, entries in consumers.items():
        following = set()
        for entry in entries:
            if not entry.op.applies_activation or entry.keras_output is None:
                break
            activation = entry.op.fixed_activation or \
                activation_name(keras_layer(model, entry, entry.keras_output))
            following.add((activation, entry.keras_output) if activation else None)
        else:
            if len({a[0] for a in following if a}) == 1 and None not in following:
                out.setdefault(name, Surroundings()).followed_by = sorted(following)[0]
    out.setdefault(manifest.output.tensor, Surroundings()).is_output = True
    for p in plan:
        if p.op == "scale":
            out.setdefault(p.entry.inputs[0], Surroundings()).batchnorm_after = p.keras_layer
    return out


def measure_undumped(model, manifest, image_paths, plan: list) -> None:
    """Add every image's pre-activations, undumped values and partial-sum bounds to ``plan``."""
    from core.kerasenv import keras
    from golden.capture import preprocess_steps
    from imagesets.images import load_rgb01

    if not plan:
        return
    folder = Path(manifest.path).parent
    model_input = model.inputs[0]
    needed = {p.keras_layer: model.get_layer(p.keras_layer).input
              for p in plan if p.from_tensor is None}
    fetched = {name: t for name, t in needed.items() if t is not model_input}
    sub_model = keras.Model(model.inputs, list(fetched.values())) if fetched else None
    steps = manifest.preprocessing.steps
    width, height = manifest.input.width, manifest.input.height
    reused = {p.from_tensor for p in plan if p.from_tensor}
    for path in image_paths:
        rgb = load_rgb01(path, width, height)
        pre = preprocess_steps(rgb, steps)
        batch = (pre[-1] if pre else rgb)[None]
        outputs = sub_model.predict_on_batch(batch) if sub_model is not None else []
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        inputs = dict(zip(fetched, (np.asarray(o, np.float32) for o in outputs)))
        computed = {}
        for p in plan:
            if p.from_tensor is not None:
                x = computed.get(p.from_tensor)
                if x is None:
                    raise PrecheckError(f"tensor {p.entry.name!r}: its input "
                                        f"{p.from_tensor!r} is not a weighted layer computed "
                                        f"before it; {RERUN}")
            else:
                x = inputs.get(p.keras_layer, batch)
            kernel, bias = p.arrays(folder)
            value = p.apply(x, kernel, bias)
            if p.value is not None:
                p.value.spread.add(value)
            if p.entry.name in reused:
                computed[p.entry.name] = value
            p.bound.spread.add(p.apply(np.abs(x), np.abs(kernel),
                                       None if bias is None else np.abs(bias)))
            del kernel, bias, value
