"""Parameter files as Forge's ``ParameterLoaderBundle`` reads them, and injected weight faults.

Forge calls the builder's closure with (layer name, expected float count, .weights/.biases) once
per layer, only where the count is > 0; ``ParameterLoaderBundle`` maps ``count`` little-endian
float32 values of ``<prefix><layer><suffix>.<ext>``.  A missing or short file is an error here
(on the phone: a nil loader or a crash when mapped memory past the end is read); a longer file is
accepted (Forge maps only ``count`` floats) and reported as a warning.
"""
import os

import numpy as np

from .forge import ReferenceDeviceError

FAULT_KINDS = ("transpose", "stride", "bias", "garbage", "scale", "shift")
# scale / shift: the weights / biases 2 % off, as a BatchNorm folded with a wrong epsilon or
# gamma / a wrong beta or moving mean makes them: an error as small as a conversion bug gets
FAULT_FACTOR = 1.02


def read_parameters(param_dir, spec, layer, kind: str, count: int, warnings: list,
                    garbage: bool = False) -> np.ndarray:
    """``count`` float32 values of the layer's weights or biases file (see module doc)."""
    file_name = spec.file_name(layer.name, kind)
    path = os.path.join(str(param_dir), file_name)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise ReferenceDeviceError(
            f"{path}: missing {kind} file for {layer.describe()}; expected {count} float32 values "
            f"({count * 4} bytes) named <prefix><layer><suffix>.<ext> as the builder's "
            f"{spec.loader} closure says; re-run the converter or fix --param_dir") from None
    if size < count * 4:
        raise ReferenceDeviceError(
            f"{path}: {kind} file for {layer.describe()} is too short: {size} bytes, expected "
            f"{count} float32 values ({count * 4} bytes); the layer's shape in the builder and "
            "the written weights disagree — re-run the converter")
    if size > count * 4:
        warnings.append(f"{path}: {kind} file for layer '{layer.name}' holds {size // 4} floats, "
                        f"Forge reads only the first {count}")
    with open(path, "rb") as fh:
        raw = fh.read(count * 4)
    if garbage:
        # Fault: the float32 bytes read as float16 pairs (a wrong dtype on one side).
        return np.frombuffer(raw, dtype="<f2")[:count].astype(np.float32)
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def parse_fault(text):
    """``KIND:LAYER`` → (kind, layer) or None."""
    if text is None:
        return None
    kind, sep, layer = str(text).partition(":")
    if not sep or not layer or kind not in FAULT_KINDS:
        raise ReferenceDeviceError(f"--fault {text!r}: expected KIND:LAYER with KIND one of "
                                   f"{', '.join(FAULT_KINDS)} (e.g. transpose:conv1)")
    return kind, layer
