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
from core.forge_ops import ForgeOp, op_for_type_name
from validation.verdicts import Divergence

TRANSPARENT = ("not_judged", "data_problem")

PREPROCESSING_HINT = ("preprocessing: channel order (RGB vs BGR), mean/scale constants, or the "
                      "order of the preprocessing steps")
DEFAULT_HINT = ForgeOp.divergence_hint


def hint_for(forge_type: str, name: str = "", preprocessing=()) -> str:
    """What usually makes a tensor of this Forge type diverge (the op registry's hint);
    ``preprocessing``: the tensors implementing the manifest's preprocessing steps."""
    if name in preprocessing:
        return PREPROCESSING_HINT
    op = op_for_type_name(forge_type)
    return op.divergence_hint if op else DEFAULT_HINT


def _is_layer(forge_type: str) -> bool:
    op = op_for_type_name(forge_type)
    return op is None or op.has_layer


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
        if t and t.verdict == "not_judged" and _is_layer(t.forge_type):
            out.insert(0, t.name)
            stack.extend(t.inputs)
    return out


NAN_HINT = ("NaN/Inf computed from finite inputs: float16 overflow (values beyond ±65504 — "
            "rescale the layer or split a fused activation) or garbage weights (a weight file "
            "written or read with the wrong type or layout)")


def _only_nan_inf(t) -> bool:
    return t.verdict == "data_problem" and bool(t.problems) and \
        all(p.kind == "nan_inf" for p in t.problems)


def first_divergence(tensors: list, preprocessing=()):
    """The first :class:`Divergence` of judged TensorResults in manifest order, or None.

    In manifest order, the first tensor that either breaks its local budget (validation.replay:
    its own error, however deep and whatever its cumulative error), or fails without a local
    check while its judged inputs all pass, or computes NaN/Inf from inputs that all pass.  A
    failing tensor whose own error is within its local budget inherits and is never the
    divergence."""
    by_name = {t.name: t for t in tensors}
    for t in tensors:
        inputs_pass = all(by_name[i].verdict == "pass" for i in judged_inputs(t.name, by_name))
        nan = _only_nan_inf(t) and inputs_pass
        diverges = t.blame == "culprit" or (t.verdict == "fail" and t.blame is None
                                            and inputs_pass)
        if nan or diverges:
            layers = [*t.local.covers, t.name] if t.local and not nan \
                else covered_layers(t.name, by_name)
            return Divergence(tensor=t.name, index=t.index, forge_type=t.forge_type,
                              keras_layer=t.keras_layer, forge_layers=layers, reason=t.reason,
                              hint=NAN_HINT if nan else hint_for(t.forge_type, t.name,
                                                                 preprocessing))
    return None
