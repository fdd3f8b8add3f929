"""First divergence: the earliest tensor that breaks its budget while all its inputs keep theirs.

Tensors are visited in the manifest's topological order.  A tensor's inputs are the manifest's
``inputs``, looking through tensors that carry no verdict of their own (Collect, tensors without a
Keras counterpart, missing dumps) to the judged tensors behind them.  A tensor ``fail``-ing (over
budget, NaN/Inf) or in ``error`` (unusable dump) whose inputs all ``pass`` is where the device
first stops computing what Keras computes; everything after it inherits the damage.
"""

BROKEN = ("fail", "error")
TRANSPARENT = ("not_compared", "missing")

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


def judged_inputs(name: str, rows: dict) -> list:
    """The judged tensors feeding ``name`` (looking through transparent ones)."""
    out, seen = [], set()
    stack = list(rows[name]["inputs"]) if name in rows else []
    while stack:
        i = stack.pop()
        if i in seen or i not in rows:
            continue
        seen.add(i)
        if rows[i]["status"] in TRANSPARENT:
            stack.extend(rows[i]["inputs"])
        else:
            out.append(i)
    return out


def covered_layers(name: str, rows: dict) -> list:
    """Forge layers the tensor's verdict covers: itself and the not-compared tensors before it."""
    out, stack = [name], list(rows[name]["inputs"])
    while stack:
        i = stack.pop()
        r = rows.get(i)
        if r and r["status"] == "not_compared" and r["forge_type"] not in ("Collect", "Input"):
            out.insert(0, i)
            stack.extend(r["inputs"])
    return out


def first_divergence(rows: list):
    """The results JSON's ``first_divergence`` dict, or None when nothing is broken."""
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        if r["status"] not in BROKEN:
            continue
        inputs = judged_inputs(r["name"], by_name)
        if all(by_name[i]["status"] == "pass" for i in inputs):
            return {"tensor": r["name"], "keras_layer": r.get("keras_layer"), "index": r["index"],
                    "forge_type": r["forge_type"], "forge_layers": covered_layers(r["name"], by_name),
                    "status": r["status"], "reason": r.get("reason", ""),
                    "hint": hint_for(r["forge_type"], r["name"])}
    broken = [r for r in rows if r["status"] in BROKEN]
    if broken:  # every broken tensor has a broken input: a cycle cannot happen, so report the first
        r = broken[0]
        return {"tensor": r["name"], "keras_layer": r.get("keras_layer"), "index": r["index"],
                "forge_type": r["forge_type"], "forge_layers": [r["name"]], "status": r["status"],
                "reason": r.get("reason", ""), "hint": hint_for(r["forge_type"], r["name"])}
    return None
