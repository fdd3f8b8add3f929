"""The one place that picks the Keras implementation, so Keras 2 (tf-keras) and Keras 3 share code.

Set ``TF_USE_LEGACY_KERAS=1`` (TensorFlow's own switch) to run on tf-keras with TF >= 2.16; with
TF 2.15 plain ``import keras`` already is Keras 2.
"""
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras  # noqa: F401
    KERAS_PACKAGE = "tf-keras"  # Keras 3 is installed beside it: versions must name this one
else:
    import keras  # noqa: F401
    KERAS_PACKAGE = "keras"

KERAS_VERSION = keras.__version__
KERAS3 = int(KERAS_VERSION.split(".")[0]) >= 3


def variable_name(variable) -> str:
    """A layer weight's own name (``kernel``, ``moving_mean``): Keras 3 names it so, Keras 2
    ``layer/kernel:0``."""
    return variable.name.split("/")[-1].split(":")[0]


def weight_arrays(layer) -> list:
    """The layer's weights as read-only float32 arrays that share TensorFlow's buffers instead of
    copying them (``get_weights`` copies: VGG16's 553 MB again, in fresh memory).  TensorFlow
    copies a variable's buffer when it is assigned while read, so the arrays keep the values they
    had; read-only, since writing into one would change the model behind Keras's back."""
    arrays = []
    for variable in layer.weights:
        tf_variable = getattr(variable, "value", None) if KERAS3 else variable   # 3 wraps it
        read = getattr(tf_variable, "read_value", None)       # None: not TensorFlow's backend
        array = np.asarray(read() if read else variable.numpy(), dtype=np.float32)
        array.flags.writeable = False
        arrays.append(array)
    return arrays


def register_serializable(package: str):
    """Decorator registering a custom layer for safe (de)serialisation under either Keras."""
    if KERAS3:
        return keras.saving.register_keras_serializable(package=package)
    return keras.utils.register_keras_serializable(package=package)


def saved_keras_version(path):
    """The Keras version recorded in a .keras (metadata.json) or .h5 (keras_version attribute)
    model file, or None when the file records none or cannot be read as either."""
    import json
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("metadata.json")).get("keras_version")
        import h5py

        with h5py.File(path, "r") as h5:
            version = h5.attrs.get("keras_version")
            return version.decode() if isinstance(version, bytes) else version
    except (OSError, KeyError, ValueError):
        return None


def unreadable_model_reason(path):
    """Why this Keras cannot load the model file ``path``, or None: Keras 2 (TF 2.15's Keras or
    tf-keras) cannot read what Keras 3 writes, in .keras or .h5 alike."""
    written = saved_keras_version(path)
    if KERAS3 or not written or int(str(written).split(".")[0]) < 3:
        return None
    return (f"{path}: written by Keras {written}, whose model format {KERAS_PACKAGE} "
            f"{KERAS_VERSION} (Keras 2) cannot read; convert it under Keras 3 (`pip install -e "
            "\".[tf]\"` installs it), or save the model from Keras 2")
