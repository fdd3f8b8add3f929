"""The judge's inputs, as plain records: what was compared per tensor, and the predictions.

Nothing here decides pass or fail (that is :mod:`validation.judge`):

* :class:`Comparison` — one per manifest tensor, in topological order: ``comparable`` (the tensor
  has a Keras counterpart), its metrics over every image where both sides have usable data, and
  :class:`Problem` s where they do not (the device status and reason: missing, truncated,
  NaN/Inf, stale conversion, ...), built from the measurement (:mod:`validation.measurements`);
* :class:`Prediction` — per image the label and the Keras and device top-5;
* :func:`check_fresh` — cached artifacts record the manifest hash they were made for.
"""
from dataclasses import dataclass, field
from typing import Optional

from core.manifest import Manifest, manifest_hash


class StaleStoreError(RuntimeError):
    """A cached store or measurement made for another manifest than the one being validated."""


@dataclass
class Problem:
    kind: str                  # device store status, or golden_<status> for the Keras side
    image: Optional[str]
    reason: str


@dataclass
class Comparison:
    name: str
    index: int
    forge_type: str
    shape: Optional[list]
    inputs: list
    keras_layer: Optional[str]
    comparable: bool
    not_comparable_reason: str = ""
    metrics: Optional[dict] = None        # validation.metrics.Accumulator.result()
    problems: list = field(default_factory=list)
    local: dict = field(default_factory=dict)   # "device"/"golden" replay -> metrics dict
    covers: list = field(default_factory=list)  # Forge layers the local check covers with it
    no_recipe: Optional[str] = None             # why it has no device-input replay


def comparable(entry) -> bool:
    ref = entry.reference
    return entry.compare and ref is not None and ref.kind != "input_texture"


def not_comparable_reason(entry) -> str:
    if entry.reference is not None and entry.reference.kind == "input_texture":
        return "Forge's input texture (raw 8-bit image), not a network tensor"
    if entry.op.gathers == "images":
        return f"{entry.forge_type} only gathers the inputs of a merge; Forge writes no dump for it"
    if not entry.dump_file:
        return "Forge's dumper writes no file for this tensor (it is dumped through the " \
               "tensors it feeds)"
    return "no Keras counterpart (e.g. a Dense whose activation Keras fuses); judged through " \
           "the next tensor"


def check_fresh(recorded: str, manifest: Manifest, what) -> None:
    """Refuse a cached artifact made for another manifest (it records the manifest's hash)."""
    current = manifest_hash(manifest)
    if recorded != current:
        raise StaleStoreError(
            f"{what} was made for another conversion (manifest hash {str(recorded)[:12]}…, this "
            f"manifest {current[:12]}…); delete it (or the cache folder) so it is made again")


# -- predictions and the run log ---------------------------------------------------------------

@dataclass
class Prediction:
    image: str
    label: Optional[int]
    keras: Optional[list]          # top-5 class indices
    device: Optional[list]
    keras_gap: Optional[float] = None     # Keras's top-1 score minus its second
    keras_gap5: Optional[float] = None    # Keras's 5th score minus its 6th
