"""Darknet cfg + weights -> Keras model + metadata (anchors, classes, heads), and saving them."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from .builder import build_keras_model
from .errors import DarknetError
from .plan import NetworkPlan, build_plan
from .weights import read_weights
from core.atomic import write_text, write_with

META_FORMAT = "keras2metal-darknet"


@dataclass
class DarknetMeta:
    """What the Keras model does not carry: input convention, detection heads, header, counts.

    ``heads``: one dict per model output that is a detection head, in output order, with
    ``kind`` ('region' | 'yolo'), ``layer`` (Darknet index), ``output`` (model output index),
    ``output_name``, ``classes``, ``num``, ``anchors`` ([[w, h], ...], all of the section's
    anchors), ``anchor_units`` ('grid' for region, 'pixels' for yolo), ``mask`` (yolo),
    ``coords``/``softmax``/``tree`` (region), ``grid`` ([H, W] at the model's input size or None).
    """

    cfg: str
    input_shape: list  # [H, W, C]; H, W are None for a fully convolutional model
    net_size: list  # [H, W] the network was planned for (the yolo anchors' reference size)
    floats: int
    header: dict | None = None
    heads: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    classes: int | None = None
    reorg: str = "darknet"
    input_format: str = "RGB float32 in [0, 1], NHWC (Darknet: pixels / 255)"
    format: str = META_FORMAT
    version: int = 1

    @property
    def anchors(self) -> list:
        """Flat anchor list of the first head (YAD2K's anchors-file content), or []."""
        if not self.heads:
            return []
        return [v for pair in self.heads[0]["anchors"] for v in pair]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "DarknetMeta":
        if data.get("format") != META_FORMAT:
            raise DarknetError(f"not a {META_FORMAT} metadata file (format={data.get('format')!r})")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path) -> "DarknetMeta":
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise DarknetError(f"{path}: cannot read Darknet metadata ({exc}); re-run yad2k") from None
        return cls.from_dict(data)


def output_heads(plan: NetworkPlan, output_names=None) -> list:
    """One head dict per model output (see :class:`DarknetMeta`): every ``[yolo]``, else the last
    ``[region]`` — the heads build_keras_model makes outputs of."""
    yolo = [s for s in plan.heads if s.kind == "yolo"]
    chosen = yolo if yolo else plan.heads[-1:]
    heads = []
    for k, spec in enumerate(chosen):
        head = dict(kind=spec.kind, layer=spec.index, output=k,
                    output_name=output_names[k] if output_names else None,
                    grid=None if plan.fully_convolutional else list(spec.in_shape[:2]),
                    **spec.attrs)
        heads.append(head)
    return heads


def make_meta(plan: NetworkPlan, model, header=None, reorg="darknet") -> DarknetMeta:
    outs = model.outputs
    names = [t.name.split("/")[0].split(":")[0] for t in outs]
    layer_names = [getattr(t, "_keras_history", [None])[0] for t in outs]
    names = [ln.name if ln is not None else n for ln, n in zip(layer_names, names)]
    heads = output_heads(plan, names)
    classes = heads[0]["classes"] if heads else None
    h, w, c = plan.input_shape
    fc = plan.fully_convolutional
    return DarknetMeta(cfg=os.path.basename(plan.path), input_shape=[None if fc else h, None if fc else w, c],
                       net_size=[h, w], floats=plan.n_floats,
                       header=header.as_dict() if header is not None else None, heads=heads,
                       outputs=names, classes=classes, reorg=reorg)


def convert(cfg_path, weights_path, *, fully_convolutional: bool = False, allow_extra: bool = False,
            input_size=None, reorg: str = "darknet"):
    """Convert a Darknet cfg + weights pair to ``(keras.Model, DarknetMeta)``.

    ``input_size`` = (height, width) overrides the cfg's ``[net]`` size; ``reorg`` selects
    Darknet's exact ``[reorg]`` ('darknet', default) or TensorFlow's space_to_depth.
    """
    plan = build_plan(cfg_path, input_size=input_size, fully_convolutional=fully_convolutional)
    weights = read_weights(weights_path, plan, allow_extra=allow_extra)
    model = build_keras_model(plan, weights, reorg=reorg)
    meta = make_meta(plan, model, weights.header, reorg)
    meta.extra_bytes = weights.extra_bytes  # informational, not serialised
    return model, meta


def output_root(path) -> str:
    root, ext = os.path.splitext(os.fspath(path))
    return root if ext.lower() in (".h5", ".keras", ".hdf5") else os.fspath(path)


def format_anchors(values) -> str:
    out = []
    for v in values:
        text = repr(float(v))
        out.append(text[:-2] if text.endswith(".0") else text)
    return ", ".join(out)


def save_model_atomic(model, path):
    """``model.save`` to a temporary file in the destination folder, then ``os.replace``."""
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() not in (".keras", ".h5"):
        raise DarknetError(f"{path}: the output must end in .keras or .h5")
    write_with(path, model.save)

def save_converted(model, meta: DarknetMeta, out_path) -> dict:
    """Write the model, ``<root>_darknet.json`` and, for detectors, ``<root>_anchors.txt``."""
    root = output_root(out_path)
    written = {}
    save_model_atomic(model, out_path)
    written["model"] = os.fspath(out_path)
    if meta.heads:
        write_text(root + "_anchors.txt", format_anchors(meta.anchors) + "\n")
        written["anchors"] = root + "_anchors.txt"
    write_text(root + "_darknet.json", meta.to_json() + "\n")
    written["meta"] = root + "_darknet.json"
    return written
