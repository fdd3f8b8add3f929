"""Local error: each layer recomputed on given inputs, so its own error is seen apart from what
it inherited.

A tensor's *cumulative* error (device vs Keras on the image) grows with depth; its *local* error
does not: it is what the layer itself adds.  Two ways to measure it, per image:

* **device-input replay** (phone dumps and the reference device alike): the Keras layers the
  Forge layer stands for run in float32 on the device's own dumped inputs, and the result is
  compared with the device's dumped output (:class:`KerasRecipes`);
* **golden-input replay** (the reference device): the MPS kernel runs on Keras's golden inputs
  rounded to float16 and is compared with Keras's output
  (:meth:`device_pull.reference_device.ReferenceDevice.replay`).

A recipe starts from the nearest tensors *with* a Keras counterpart: a Forge layer whose input
Keras does not expose (the depthwise half of a separable convolution, a Dense whose logits go
straight into a softmax, a copy the converter inserted) is checked together with it, as a pair —
the recipe ``covers`` those layers.  A weighted layer whose activation Keras fuses but Forge
runs as a layer of its own (a Dense's softmax, a convolution's ReLU6) also gets a recipe of its
own when the device dumps it: its Keras layer without the activation (:func:`_pre_activation`),
so an error in the logits is measured in the logits, where the device's float16 rounding is a
few ulps; the activation after it then starts from the device's logits (:func:`_activation`),
so its own error is the softmax's alone, not the softmax's plus the logits' rounding.
Tensors whose inputs lead back to the image's preprocessing without a Keras tensor between have
no recipe (their cumulative error is their local error).
"""
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from core.manifest import KerasOutput, Manifest, PreprocessingStep, ResizedImage
from validation.undumped import KERNEL_CLASSES, activation_name

# record statuses whose values a replay uses: not_compared is a pre-activation the manifest does
# not compare with Keras (its values are the device's all the same)
USABLE = ("ok", "not_compared")


@dataclass
class Source:
    tensor: str                     # the Forge tensor whose device values feed the recipe
    affine: Optional[list]          # its values are a * keras + b: undone before Keras runs


@dataclass
class Recipe:
    tensor: str                     # the Forge tensor checked
    sources: list                   # [Source], in the sub-model's input order
    affine: Optional[list]          # the tensor's values are a * keras + b
    covers: list = field(default_factory=list)   # Forge layers checked with it (pairs)
    model: object = None            # the Keras sub-model: sources' Keras tensors -> tensor's


def _keras_input_tensor(manifest: Manifest) -> Optional[str]:
    """The Forge tensor that holds the Keras model's input: the last preprocessing step (or the
    resized image when there is none)."""
    steps = len(manifest.preprocessing.steps)
    for entry in manifest.tensors:
        ref = entry.reference
        if steps and isinstance(ref, PreprocessingStep) and ref.step == steps - 1:
            return entry.name
        if not steps and isinstance(ref, ResizedImage):
            return entry.name
    return None


def _sources(entry, by_name: dict, keras_input: str, pre: dict):
    """(sources, covered Forge layers) of a tensor, or (None, reason)."""
    sources, covers, seen = [], [], set()
    stack = list(reversed(entry.inputs))
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        t = by_name[name]
        if isinstance(t.reference, KerasOutput) or name == keras_input or name in pre:
            sources.append(t)
        elif t.reference is None:
            covers.append(name)
            stack.extend(reversed(t.inputs))
        else:
            return None, f"its input {name!r} is a preprocessing step, not a Keras tensor"
    if not sources:
        return None, "it reads no tensor Keras exposes"
    return sources, covers


class KerasRecipes:
    """The device-input replay of every tensor that has one, built once per Keras model."""

    def __init__(self, model, manifest: Manifest):
        from golden.capture import _layer_output

        self.recipes, self.missing = {}, {}
        by_name = {t.name: t for t in manifest.tensors}
        keras_input = _keras_input_tensor(manifest)
        pre = {}         # dumped pre-activation -> (its Keras layer, the layer's linear output)
        for entry in manifest.tensors:
            layer = _pre_activation_layer(model, entry)
            if layer is not None:
                try:
                    pre[entry.name] = (layer, _pre_activation(layer))
                except (ValueError, AttributeError, RuntimeError) as exc:   # a shared layer
                    self.missing[entry.name] = f"no Keras layer without its activation ({exc})"
        for entry in manifest.tensors:
            if entry.name not in pre and (not isinstance(entry.reference, KerasOutput)
                                          or not entry.compare):
                continue
            sources, covers = _sources(entry, by_name, keras_input, pre)
            if sources is None:
                self.missing[entry.name] = covers          # the reason there is no recipe
                continue
            inputs = []
            for s in sources:
                if s.name == keras_input:
                    inputs.append(model.inputs[0])
                elif s.name in pre:
                    inputs.append(pre[s.name][1])
                else:
                    inputs.append(_layer_output(model, s.reference.layer, s.reference.output_index))
            ref = entry.reference
            # the activation after a pre-activation the device dumped starts from its values
            activated = [pre[s.name] for s in sources
                         if s.name in pre and ref is not None and pre[s.name][0].name == ref.layer]
            try:
                if entry.name in pre:
                    output = pre[entry.name][1]
                elif activated:
                    output = _activation(*activated[0])
                else:
                    output = _layer_output(model, ref.layer, ref.output_index)
                sub = _sub_model(inputs, output)
            except (ValueError, AttributeError, RuntimeError) as exc:
                self.missing[entry.name] = f"no Keras sub-model from its inputs ({exc})"
                continue
            self.recipes[entry.name] = Recipe(
                entry.name, [Source(s.name, s.reference.affine if isinstance(s.reference, KerasOutput)
                                    else None) for s in sources],
                ref.affine if ref is not None else None,
                [c for c in covers if by_name[c].op.has_layer], sub)

    def replay(self, device: dict) -> dict:
        """``{tensor: Keras's output on the device's inputs}`` (in the device tensor's shape) for
        every recipe whose inputs the device has usable (``device``: ``{tensor: (data, status,
        reason)}``)."""
        out = {}
        for name in self.recipes:
            expected = self.replay_one(name, device)
            if expected is not None:
                out[name] = expected
        return out

    def replay_one(self, name: str, device: dict):
        """Keras's output of one recipe on the device's inputs, or None when an input is not
        usable (missing, unreadable, or not finite)."""
        recipe = self.recipes[name]
        values = []
        for s, keras_input in zip(recipe.sources, recipe.model.inputs):
            data, status = device[s.tensor][0], device[s.tensor][1]
            if status not in USABLE or data is None:
                return None
            x = np.asarray(data, np.float32)
            if not np.isfinite(x).all():      # NaN/Inf came from before: no local error here
                return None
            if s.affine:
                x = (x - np.float32(s.affine[1])) / np.float32(s.affine[0])
            values.append(x.reshape((1,) + tuple(keras_input.shape[1:])))
        y = np.asarray(recipe.model(values if len(values) > 1 else values[0], training=False),
                       np.float32)[0]
        if recipe.affine:
            y = np.float32(recipe.affine[0]) * y + np.float32(recipe.affine[1])
        own = device[name][0]
        return y.reshape(np.shape(own)) if own is not None and y.size == np.size(own) else y


# Keras layers whose kernel a Forge layer of the same arithmetic holds whole (a separable
# convolution is split in two: its depthwise half is not the layer without its activation)
WHOLE_KERNEL_CLASSES = tuple(c for c in KERNEL_CLASSES if c != "SeparableConv2D")


def _pre_activation_layer(model, entry):
    """The Keras layer whose output *before its fused activation* the dumped tensor ``entry`` is
    (Keras exposes only the activation's output), or None."""
    if entry.reference is not None or not entry.dump_file or entry.op.accumulator is None \
            or len(entry.keras_layers or []) != 1:
        return None
    try:
        layer = model.get_layer(entry.keras_layers[0])
    except ValueError:
        return None
    if type(layer).__name__ not in WHOLE_KERNEL_CLASSES or activation_name(layer) is None:
        return None
    return layer


def _pre_activation(layer):
    """``layer``'s output before its activation, as a tensor of the model's graph: a copy of the
    layer with a linear activation and the same weights, applied to the layer's input."""
    config = {**layer.get_config(), "activation": "linear", "name": f"{layer.name}__pre_activation"}
    copy = type(layer).from_config(config)
    output = copy(layer.input)
    copy.set_weights(layer.get_weights())
    return output


def _activation(layer, pre_activation):
    """``layer``'s activation applied to its pre-activation tensor."""
    from core.kerasenv import keras

    return keras.layers.Activation(layer.activation, name=f"{layer.name}__activation")(
        pre_activation)


def _sub_model(inputs, output):
    from core.kerasenv import keras

    unique = list({id(t): t for t in inputs}.values())
    if len(unique) != len(inputs):
        raise ValueError("two inputs are the same Keras tensor")
    return keras.Model(unique if len(unique) > 1 else unique[0], output)
