"""The one place that picks the Keras implementation, so Keras 2 (tf-keras) and Keras 3 share code.

Set ``TF_USE_LEGACY_KERAS=1`` (TensorFlow's own switch) to run on tf-keras with TF >= 2.16; with
TF 2.15 plain ``import keras`` already is Keras 2.
"""
import os

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
