"""The model zoo: the networks of the original tool by name, and loading models from files.

``load_model(spec, weights, seed)`` is the single way every command of the project gets a Keras
model, so ``--weights`` and ``--seed`` mean the same everywhere: the same seed always rebuilds the
same model.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from core.errors import ConversionError
from core.kerasenv import KERAS3, keras, unreadable_model_reason
from core.seeding import seeded_init


@dataclass(frozen=True)
class ZooEntry:
    key: str                      # canonical lower-case key, e.g. "resnet50"
    constant: str                 # the original tool's MODEL constant, e.g. "RESNET_50"
    forge_name: str               # Forge model name: weight-file and dump prefix
    family: str                   # preprocessing family (see core.preprocessing)
    input_size: tuple             # (height, width)
    kind: str                     # "classifier" or "yolo"
    build: Callable               # build(weights: "imagenet" | None, model_dir: Path) -> keras.Model
    trained: bool = False         # build() returns trained weights: --weights trained keeps them


def _application(name: str, size: int):
    def build(weights, model_dir):
        ctor = getattr(keras.applications, name)
        return ctor(weights=weights, input_shape=(size, size, 3))
    return build


def _darknet(cfg_name: str, forge_name: str, size: int):
    def build(weights, model_dir):
        if weights == "imagenet":
            raise ConversionError(
                f"{forge_name}: there are no ImageNet weights for a YOLO model; convert the Darknet "
                f"weights with `yad2k {cfg_name} <file>.weights {model_dir}/{forge_name}.keras` and "
                "pass --weights PATH, or use --weights random")
        from core.yolo_models import build_from_cfg
        return build_from_cfg(cfg_name, size)
    return build


def _default_model(weights, model_dir):
    if weights == "imagenet":
        raise ConversionError("DEFAULT: the embedded shape classifier has no ImageNet weights; use "
                              "--weights trained (its shipped weights) or random")
    from core.default_model import load_shipped
    return load_shipped()


ZOO = [
    ZooEntry("tiny_yolo", "TINY_YOLO", "tiny_yolo", "yolo", (416, 416), "yolo",
             _darknet("yolov2-tiny-voc.cfg", "tiny_yolo", 416)),
    ZooEntry("yolo", "YOLO", "yolo", "yolo", (608, 608), "yolo",
             _darknet("yolov2.cfg", "yolo", 608)),
    ZooEntry("vgg16", "VGG16", "vgg_16", "caffe", (224, 224), "classifier",
             _application("VGG16", 224)),
    ZooEntry("resnet50", "RESNET_50", "resnet_50", "caffe", (224, 224), "classifier",
             _application("ResNet50", 224)),
    ZooEntry("inception_v3", "INCEPTION_V3", "inception_v3", "tf", (299, 299), "classifier",
             _application("InceptionV3", 299)),
    ZooEntry("inception_resnet_v2", "INCEPTION_RESNET_V2", "inception_resnet_v2", "tf",
             (299, 299), "classifier", _application("InceptionResNetV2", 299)),
    ZooEntry("mobilenet", "MOBILE_NET", "mobilenet", "tf", (224, 224), "classifier",
             _application("MobileNet", 224)),
    ZooEntry("xception", "XCEPTION", "xception", "tf", (299, 299), "classifier",
             _application("Xception", 299)),
    ZooEntry("default", "DEFAULT", "shapes_net", "tf", (32, 32), "classifier", _default_model,
             trained=True),
]

_ALIASES = {"resnet_50": "resnet50", "vgg_16": "vgg16", "mobile_net": "mobilenet",
            "inceptionv3": "inception_v3", "inceptionresnetv2": "inception_resnet_v2",
            "tinyyolo": "tiny_yolo", "yolov2": "yolo", "yolo2": "yolo",
            "tiny_yolo_voc": "tiny_yolo"}


def zoo_entry(spec: str) -> Optional[ZooEntry]:
    """The zoo entry for a name such as ``RESNET_50``, ``resnet50`` or ``resnet_50``, else None."""
    key = spec.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    for entry in ZOO:
        if key in (entry.key, entry.constant.lower(), entry.forge_name):
            return entry
    return None


def zoo_names() -> list:
    return [entry.constant for entry in ZOO]


def _register_custom_layers():
    """Import the modules that register the project's custom Keras layers for safe loading."""
    try:
        import core.darknet.layers  # noqa: F401
    except ImportError:
        pass


def load_model_file(path, *, unsafe: bool = False):
    """Load a .keras or .h5 model; safe mode unless ``unsafe`` (Lambda layers need it)."""
    path = Path(path)
    if not path.exists():
        raise ConversionError(f"{path}: no such model file; give a zoo name ({', '.join(zoo_names())}) "
                              "or the path of a .h5/.keras model")
    if path.suffix not in (".h5", ".keras", ".hdf5"):
        raise ConversionError(f"{path}: unknown model file type {path.suffix!r}; expected .keras or .h5")
    reason = unreadable_model_reason(path)
    if reason:
        raise ConversionError(reason)
    _register_custom_layers()
    kwargs = {"compile": False}
    if path.suffix == ".keras" or KERAS3:
        kwargs["safe_mode"] = not unsafe
    try:
        return keras.models.load_model(str(path), **kwargs)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ConversionError(
                f"{path}: the model contains a Lambda layer, which runs arbitrary Python when loaded; "
                "pass --unsafe if you trust the file") from exc
        raise ConversionError(f"{path}: cannot load the model ({exc})") from exc
    except OSError as exc:
        raise ConversionError(f"{path}: cannot read the model file ({exc}); is it truncated?") from exc


def load_model(spec: str, weights: str = "random", seed: int = 0, *,
               model_dir="model_data", unsafe: bool = False, family: Optional[str] = None):
    """Build or load a model by zoo name or file, with ``weights`` = random | imagenet | PATH."""
    entry = zoo_entry(str(spec))
    # Keras names unnamed layers from a per-process counter: start from a clean session so a
    # model rebuilt in another process (golden capture, validation) gets the same layer names.
    keras.backend.clear_session()
    if entry is None:
        model = load_model_file(spec, unsafe=unsafe)
        if weights == "random":
            seeded_init(model, seed, family or "none")
        elif weights == "imagenet":
            raise ConversionError(f"{spec}: --weights imagenet applies to zoo models only; the "
                                  "file's own weights are used with --weights file")
        elif weights not in ("file", None):
            _load_weights(model, weights)
        return model
    if weights == "imagenet":
        try:
            return entry.build("imagenet", Path(model_dir))
        except ConversionError:
            raise
        except Exception as exc:  # urllib/HTTP/SSL errors surface as many types
            raise ConversionError(
                f"{entry.constant}: could not fetch the ImageNet weights ({type(exc).__name__}: {exc}). "
                "Use --weights random for seeded random weights, or download the weights file "
                "elsewhere and pass --weights PATH") from exc
    model = entry.build(None, Path(model_dir))
    if weights == "trained":
        if not entry.trained:
            raise ConversionError(f"{entry.constant}: --weights trained applies to models shipped "
                                  "with trained weights (DEFAULT); use random, imagenet or PATH")
        return model
    if weights == "random":
        seeded_init(model, seed, entry.family)
    else:
        _load_weights(model, weights)
    return model


def _load_weights(model, path):
    path = Path(path)
    if not path.exists():
        raise ConversionError(f"{path}: no such weights file; use --weights random, imagenet or a "
                              "path to a weights file for this architecture")
    try:
        model.load_weights(str(path))
    except Exception as exc:
        raise ConversionError(f"{path}: the weights do not fit model {model.name!r} ({exc})") from exc
