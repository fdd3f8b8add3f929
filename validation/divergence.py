"""First divergence: the earliest tensor that breaks its budget while all its inputs keep theirs.

Tensors are visited in the manifest's topological order.  A tensor's inputs are the manifest's
``inputs``, looking through tensors that carry no numerical verdict (``not_judged``: Collect,
tensors without a Keras counterpart; ``data_problem``: a dump that cannot be compared) to the
judged tensors behind them.  The earliest ``fail`` whose judged inputs all ``pass`` is where the
device first stops computing what Keras computes; everything after it inherits the damage.

Data problems are reported apart (see :mod:`validation.judge`), with one exception: NaN/Inf
values that appear in a tensor whose inputs all pass were computed there (float16 overflow,
garbage weights), so that tensor is also where the device first diverges.
"""
from validation.verdicts import Divergence

TRANSPARENT = ("not_judged", "data_problem")

HINTS = {
    "Conv": "convolution weights: OHWI transpose of the Keras (kH, kW, in, out) kernel, kernel or "
            "stride given as (y, x) instead of (x, y), padding offset (same vs valid), a dropped "
            "bias, or BatchNorm folded wrongly (epsilon, gamma/sqrt(var), mean subtracted twice)",
    "PointwConv": "1×1 convolution weights: OHWI transpose, a dropped bias or a wrong BatchNorm "
                  "fold",
    "DepthwConv": "depthwise weights: [C][kH][kW] layout (not Keras' kH, kW, C, 1), channel "
                  "multiplier, stride tuple order, or a wrong BatchNorm fold",
    "Dense": "dense weights: flatten order (Keras flattens H, W, C; the device reads channel "
             "slices), the [out][in] transpose, or a dropped bias",
    "Softmax": "the logits before it (a Dense or 1×1 convolution whose output Keras does not "
               "expose): weights transpose, flatten order or a dropped bias",
    "Custom": "preprocessing: channel order (RGB vs BGR), mean/scale constants, or the order of "
              "the preprocessing steps",
    "Activation": "activation kind or parameters (ReLU6 cap, leaky slope), or preprocessing "
                  "scale (input_scale: [0, 1] → [-1, 1])",
    "Resize": "the input image: resize filter (Lanczos vs bilinear), 8-bit vs float input, or a "
              "different image than Keras saw",
    "Concat": "channel offsets of the concatenated inputs (each input's destinationChannelOffset)"
              " or the order of the inputs",
    "Add": "the inputs of the merge (a branch's scale, e.g. Inception-ResNet's residual scale) or "
           "their order",
    "Multiply": "the inputs of the merge or their order",
    "MaxPool": "pool size/stride tuple order, padding (same vs valid) or MPS edge offsets",
    "AvgPool": "pool size/stride tuple order, padding, or whether edge pixels count the padding",
    "GlbAvgPool": "global average pooling over the wrong extent (padding or partial image)",
    "ZeroPadding": "padding amounts or their (top, bottom, left, right) order",
    "SpaceToDepthX2": "space-to-depth channel order (Forge, TensorFlow and Darknet differ)",
}
DEFAULT_HINT = "the layer's parameters or their layout in the weight files"


def hint_for(forge_type: str, name: str = "") -> str:
    if forge_type in ("Activation", "Custom") and name in ("input_scale", "subtract_mean",
                                                          "rgb2bgr"):
        return HINTS["Custom"]
    return HINTS.get(forge_type, DEFAULT_HINT)


def judged_inputs(name: str, tensors: dict) -> list:
    """Names of the judged tensors feeding ``name`` (looking through transparent ones);
    ``tensors``: name → TensorResult."""
    out, seen = [], set()
    stack = list(tensors[name].inputs) if name in tensors else []
    while stack:
        i = stack.pop()
        if i in seen or i not in tensors:
            continue
        seen.add(i)
        if tensors[i].verdict in TRANSPARENT:
            stack.extend(tensors[i].inputs)
        else:
            out.append(i)
    return out


def covered_layers(name: str, tensors: dict) -> list:
    """Forge layers the tensor's verdict covers: itself and the not-judged layers before it."""
    out, stack = [name], list(tensors[name].inputs)
    while stack:
        t = tensors.get(stack.pop())
        if t and t.verdict == "not_judged" and t.forge_type not in ("Collect", "Input"):
            out.insert(0, t.name)
            stack.extend(t.inputs)
    return out


NAN_HINT = ("NaN/Inf computed from finite inputs: float16 overflow (values beyond ±65504 — "
            "rescale the layer or split a fused activation) or garbage weights (a weight file "
            "written or read with the wrong type or layout)")


def _only_nan_inf(t) -> bool:
    return t.verdict == "data_problem" and bool(t.problems) and \
        all(p.kind == "nan_inf" for p in t.problems)


def first_divergence(tensors: list):
    """The first :class:`Divergence` of judged TensorResults in manifest order, or None.

    Where local checks were made (validation.replay), the first tensor whose own error breaks
    its local budget is the divergence — however deep, and whatever its cumulative error; without
    them, the earliest ``fail`` whose judged inputs all pass."""
    by_name = {t.name: t for t in tensors}
    for t in tensors:
        if t.blame == "culprit":
            return Divergence(tensor=t.name, index=t.index, forge_type=t.forge_type,
                              keras_layer=t.keras_layer,
                              forge_layers=[*t.local.covers, t.name], reason=t.reason,
                              hint=hint_for(t.forge_type, t.name))
    for t in tensors:
        if t.verdict != "fail" and not _only_nan_inf(t):
            continue
        if all(by_name[i].verdict == "pass" for i in judged_inputs(t.name, by_name)):
            nan = t.verdict != "fail"
            return Divergence(tensor=t.name, index=t.index, forge_type=t.forge_type,
                              keras_layer=t.keras_layer,
                              forge_layers=covered_layers(t.name, by_name), reason=t.reason,
                              hint=NAN_HINT if nan else hint_for(t.forge_type, t.name))
    return None
