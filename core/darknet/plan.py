"""Darknet network plan: every layer's inputs, shapes, attributes and weight records.

The plan is computed from a parsed cfg with Darknet's own defaults and shape rules
(`parser.c: parse_*`, `*_layer.c: make_*_layer`). It is pure Python (no Keras, no weights): the
weights reader uses it to know how many floats each layer needs, the Keras builder and the
weights writer use it to lay the arrays out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .cfg import SUPPORTED, DarknetConfig, Section, parse_cfg
from .errors import CfgError

ACTIVATIONS = ("leaky", "linear", "relu", "logistic", "mish")
_DARKNET_ACTIVATIONS = ("relie", "ramp", "tanh", "plse", "elu", "loggy", "stair", "hardtan",
                        "lhtan", "selu", "swish", "gelu", "hard_mish", "norm_chan",
                        "norm_chan_softmax", "norm_chan_softmax_maxval", "leaky", "linear",
                        "relu", "logistic", "mish")
MAX_DIM = 1 << 16
MAX_CHANNELS = 1 << 20


@dataclass
class LayerSpec:
    """One Darknet layer: ``inputs`` are Darknet layer indices (-1 = the network input)."""

    index: int
    kind: str
    section: Section
    inputs: list
    in_shape: tuple
    out_shape: tuple
    attrs: dict = field(default_factory=dict)
    weights: list = field(default_factory=list)  # [(name, count)] in file order
    spatial_fixed: bool = False  # output H, W do not depend on the network input size

    @property
    def n_floats(self) -> int:
        return sum(n for _, n in self.weights)

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.index}"


@dataclass
class NetworkPlan:
    cfg: DarknetConfig
    input_shape: tuple  # (h, w, c) used for shape inference
    fully_convolutional: bool
    layers: list

    @property
    def path(self) -> str:
        return self.cfg.path

    @property
    def n_floats(self) -> int:
        return sum(layer.n_floats for layer in self.layers)

    @property
    def heads(self) -> list:
        return [layer for layer in self.layers if layer.kind in ("region", "yolo")]


def _activation(sec: Section, default: str) -> str:
    act = sec.get_str("activation", default)
    if act not in _DARKNET_ACTIVATIONS:
        raise sec.error(f"unknown activation '{act}'; Darknet knows {', '.join(_DARKNET_ACTIVATIONS)}",
                        "activation")
    if act not in ACTIVATIONS:
        raise sec.error(f"activation '{act}' is not supported by this converter (supported: "
                        f"{', '.join(ACTIVATIONS)})", "activation")
    return act


def _reject_flags(sec: Section, keys):
    for key in keys:
        if sec.has(key) and sec.get_int(key, 0) != 0:
            raise sec.error(f"'{key}={sec.options[key].value}' changes the weights layout and is not "
                            f"supported; remove it or set {key}=0", key)


def _layer_ref(sec: Section, key: str, value: int, current: int) -> int:
    idx = current + value if value < 0 else value
    if idx < 0 or idx >= current:
        raise sec.error(f"'{key}' refers to layer {value} -> index {idx}, which is not an earlier "
                        f"layer (valid: 0..{current - 1} or -1..-{current})", key)
    return idx


def build_plan(cfg, *, input_size=None, fully_convolutional: bool = False) -> NetworkPlan:
    """Shape-infer every layer of ``cfg`` (a path or :class:`DarknetConfig`).

    ``input_size`` = (height, width) overrides the ``[net]`` size (weights do not depend on it,
    except for ``[connected]`` layers fed by a feature map).
    """
    if not isinstance(cfg, DarknetConfig):
        cfg = parse_cfg(cfg)
    net = cfg.net
    c = net.get_int("channels", 0, lo=0, hi=MAX_CHANNELS)
    if input_size is not None:
        h, w = int(input_size[0]), int(input_size[1])
        if not (1 <= h <= MAX_DIM and 1 <= w <= MAX_DIM):
            raise CfgError(f"{cfg.path}: input size {h}x{w} is not in 1..{MAX_DIM}")
    else:
        h = net.get_int("height", 0, lo=0, hi=MAX_DIM)
        w = net.get_int("width", 0, lo=0, hi=MAX_DIM)
    if not (h and w and c):
        raise net.error("width, height and channels must all be set and non-zero "
                        f"(got width={w}, height={h}, channels={c}); add them to [net]")
    if not cfg.layers:
        raise net.error("the cfg has no layers after [net]")

    layers: list[LayerSpec] = []
    shape = (h, w, c)
    fixed = False

    def out_of(idx):
        return (shape, fixed) if idx < 0 else (layers[idx].out_shape, layers[idx].spatial_fixed)

    for sec in cfg.layers:
        i = sec.index
        prev = i - 1
        in_shape, in_fixed = out_of(prev)
        kind = sec.kind
        if kind not in SUPPORTED:
            raise sec.error(f"section [{sec.raw}] is valid Darknet but not supported by this converter "
                            f"(supported: {', '.join(sorted(SUPPORTED))}); remove it or convert by other means")
        if i > 0 and layers[prev].kind in ("region", "yolo") and kind not in ("route", "cost"):
            # the raw head output is what the Keras model exposes; nothing may consume the decoded one
            raise sec.error(f"[{sec.raw}] directly follows a detection head [{layers[prev].section.raw}]"
                            f" (layer {prev}); only [route], another head or the end may follow one")
        spec = LayerSpec(index=i, kind=kind, section=sec, inputs=[prev], in_shape=in_shape,
                         out_shape=in_shape, spatial_fixed=in_fixed)
        ih, iw, ic = in_shape
        if kind == "convolutional":
            n = sec.get_int("filters", 1, lo=1, hi=MAX_CHANNELS)
            size = sec.get_int("size", 1, lo=1, hi=MAX_DIM)
            stride = sec.get_int("stride", 1, lo=1, hi=MAX_DIM)
            pad_flag = sec.get_int("pad", 0)
            padding = sec.get_int("padding", 0, lo=0, hi=MAX_DIM)
            if pad_flag:
                padding = size // 2
            groups = sec.get_int("groups", 1, lo=1, hi=MAX_CHANNELS)
            act = _activation(sec, "logistic")
            bn = sec.get_int("batch_normalize", 0)
            _reject_flags(sec, ("flipped", "dontload", "dontloadscales", "binary", "xnor"))
            if sec.has("numload"):
                raise sec.error("'numload' is not supported; remove it", "numload")
            if ic % groups or n % groups:
                raise sec.error(f"groups={groups} must divide both the input channels ({ic}) and "
                                f"filters ({n})", "groups")
            oh = (ih + 2 * padding - size) // stride + 1
            ow = (iw + 2 * padding - size) // stride + 1
            if ih + 2 * padding < size or iw + 2 * padding < size:
                raise sec.error(f"input {ih}x{iw} (+{padding} padding) is smaller than the "
                                f"{size}x{size} kernel; use a larger input size")
            spec.attrs = dict(filters=n, size=size, stride=stride, padding=padding, groups=groups,
                              activation=act, batch_normalize=bool(bn))
            spec.out_shape = (oh, ow, n)
            k = (ic // groups) * size * size * n
            spec.weights = [("biases", n)]
            if bn:
                spec.weights += [("scales", n), ("rolling_mean", n), ("rolling_variance", n)]
            spec.weights.append(("weights", k))
        elif kind == "maxpool":
            stride = sec.get_int("stride", 1, lo=1, hi=MAX_DIM)
            size = sec.get_int("size", stride, lo=1, hi=MAX_DIM)
            padding = sec.get_int("padding", size - 1, lo=0, hi=MAX_DIM)
            for key in ("stride_x", "stride_y", "maxpool_depth"):
                if sec.has(key):
                    raise sec.error(f"'{key}' is not supported; remove it", key)
            oh = (ih + padding - size) // stride + 1
            ow = (iw + padding - size) // stride + 1
            if oh < 1 or ow < 1:
                raise sec.error(f"input {ih}x{iw} is too small for a {size}x{size} max-pool; use a "
                                "larger input size")
            spec.attrs = dict(size=size, stride=stride, padding=padding)
            spec.out_shape = (oh, ow, ic)
        elif kind == "avgpool":
            spec.out_shape = (1, 1, ic)
            spec.spatial_fixed = True
        elif kind == "route":
            refs = [_layer_ref(sec, "layers", v, i) for v in sec.get_int_list("layers")]
            groups = sec.get_int("groups", 1, lo=1, hi=MAX_CHANNELS)
            group_id = sec.get_int("group_id", 0, lo=0, hi=groups - 1)
            spec.inputs = refs
            first, first_fixed = out_of(refs[0])
            out_c = 0
            for r in refs:
                s, _ = out_of(r)
                if layers[r].kind in ("region", "yolo"):
                    raise sec.error(f"'layers' refers to the detection head at layer {r}; route "
                                    "to the convolution before it instead", "layers")
                if (s[0], s[1]) != (first[0], first[1]):
                    raise sec.error(f"'layers' joins layer {refs[0]} ({first[0]}x{first[1]}) and "
                                    f"layer {r} ({s[0]}x{s[1]}): Darknet needs equal width and height",
                                    "layers")
                if s[2] % groups:
                    raise sec.error(f"groups={groups} does not divide the {s[2]} channels of "
                                    f"layer {r}", "groups")
                out_c += s[2] // groups
            spec.in_shape = first
            spec.out_shape = (first[0], first[1], out_c)
            spec.spatial_fixed = first_fixed
            spec.attrs = dict(layers=refs, groups=groups, group_id=group_id)
        elif kind == "reorg":
            stride = sec.get_int("stride", 1, lo=1, hi=MAX_DIM)
            _reject_flags(sec, ("reverse", "flatten", "extra"))
            if ih % stride or iw % stride:
                raise sec.error(f"input {ih}x{iw} is not divisible by stride {stride}; use an input "
                                "size that is a multiple of the network's total stride")
            if ic % (stride * stride):
                raise sec.error(f"input channels {ic} not divisible by stride^2 = {stride * stride}")
            spec.attrs = dict(stride=stride)
            spec.out_shape = (ih // stride, iw // stride, ic * stride * stride)
        elif kind == "shortcut":
            src = _layer_ref(sec, "from", sec.get_int("from"), i)
            act = _activation(sec, "linear")
            alpha = sec.get_float("alpha", 1.0)
            beta = sec.get_float("beta", 1.0)
            s, _ = out_of(src)
            if layers[src].kind in ("region", "yolo"):
                raise sec.error(f"'from' refers to the detection head at layer {src}", "from")
            if (s[0], s[1]) == (ih, iw):
                stride = 1
            elif s[0] % ih == 0 and s[1] % iw == 0 and s[0] // ih == s[1] // iw:
                stride = s[0] // ih
            else:
                raise sec.error(f"'from' layer {src} is {s[0]}x{s[1]} and the previous layer "
                                f"{ih}x{iw}: only equal sizes or an integer down-sampling of "
                                "'from' are supported", "from")
            spec.inputs = [prev, src]
            spec.attrs = dict(source=src, activation=act, alpha=alpha, beta=beta, stride=stride)
        elif kind == "upsample":
            stride = sec.get_int("stride", 2, hi=MAX_DIM)
            scale = sec.get_float("scale", 1.0)
            if stride < 1:
                raise sec.error(f"stride={stride}: reverse (down-sampling) upsample is not "
                                "supported; use a positive stride", "stride")
            spec.attrs = dict(stride=stride, scale=scale)
            spec.out_shape = (ih * stride, iw * stride, ic)
        elif kind in ("region", "yolo"):
            classes = sec.get_int("classes", 20, lo=1, hi=MAX_CHANNELS)
            num = sec.get_int("num", 1, lo=1, hi=MAX_CHANNELS)
            anchors = sec.get_float_list("anchors", None)
            if anchors is None:
                anchors = [0.5] * (2 * num)  # Darknet's default biases
            if len(anchors) != 2 * num:
                raise sec.error(f"'anchors' has {len(anchors)} numbers but num={num} needs "
                                f"{2 * num} (a width,height pair per anchor)", "anchors")
            pairs = [[anchors[2 * j], anchors[2 * j + 1]] for j in range(num)]
            if kind == "region":
                coords = sec.get_int("coords", 4, lo=4, hi=4)
                softmax = bool(sec.get_int("softmax", 0))
                tree = sec.get_str("tree", "") or None
                if sec.get_int("background", 0):
                    raise sec.error("'background=1' is not supported", "background")
                expected = num * (coords + 1 + classes)
                spec.attrs = dict(classes=classes, num=num, coords=coords, softmax=softmax,
                                  anchors=pairs, tree=tree, anchor_units="grid")
            else:
                if sec.get_float("scale_x_y", 1.0) != 1.0:
                    raise sec.error(f"scale_x_y={sec.options['scale_x_y'].value} changes how box "
                                    "centres are decoded, which core.yolo does not do; only "
                                    "scale_x_y=1 is supported", "scale_x_y")
                mask = sec.get_int_list("mask", list(range(num)))
                bad = [m for m in mask if not 0 <= m < num]
                if bad:
                    raise sec.error(f"'mask' entries {bad} are not anchor indices 0..{num - 1}", "mask")
                expected = len(mask) * (classes + 5)
                spec.attrs = dict(classes=classes, num=num, mask=mask, anchors=pairs,
                                  anchor_units="pixels")
            if ic != expected:
                raise sec.error(f"the layer before has {ic} channels but this head needs {expected} "
                                f"(anchors x (classes + 5)); fix 'filters' of the last convolution "
                                "or 'classes'/'num'/'mask'")
        elif kind == "connected":
            n = sec.get_int("output", 1, lo=1, hi=MAX_CHANNELS)
            act = _activation(sec, "logistic")
            bn = sec.get_int("batch_normalize", 0)
            if fully_convolutional and not in_fixed:
                raise sec.error("a [connected] layer needs a fixed input size; convert without "
                                "--fully-convolutional")
            inputs = ih * iw * ic
            spec.attrs = dict(output=n, activation=act, batch_normalize=bool(bn), inputs=inputs)
            spec.out_shape = (1, 1, n)
            spec.spatial_fixed = True
            spec.weights = [("biases", n), ("weights", n * inputs)]
            if bn:
                spec.weights += [("scales", n), ("rolling_mean", n), ("rolling_variance", n)]
        elif kind == "dropout":
            spec.attrs = dict(probability=sec.get_float("probability", 0.5, lo=0.0, hi=1.0))
        elif kind == "softmax":
            groups = sec.get_int("groups", 1, lo=1, hi=MAX_CHANNELS)
            temperature = sec.get_float("temperature", 1.0)
            if groups != 1:
                raise sec.error(f"groups={groups} is not supported (only 1)", "groups")
            if temperature <= 0:
                raise sec.error("temperature must be positive", "temperature")
            if sec.has("tree"):
                raise sec.error("hierarchical (tree) softmax is not supported", "tree")
            if (ih, iw) != (1, 1):
                raise sec.error(f"softmax over a {ih}x{iw} feature map (Darknet normalises over "
                                "all of it) is not supported; only after [avgpool]/[connected]")
            spec.attrs = dict(groups=groups, temperature=temperature)
        elif kind == "cost":
            pass
        layers.append(spec)
    return NetworkPlan(cfg=cfg, input_shape=(h, w, c), fully_convolutional=fully_convolutional,
                       layers=layers)
