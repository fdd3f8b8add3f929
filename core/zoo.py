"""The model zoo: the networks of the original tool by name, and loading models from files.

``load_model(spec, weights, seed)`` is the single way every command of the project gets a Keras
model, so ``--weights`` and ``--seed`` mean the same everywhere: the same seed always rebuilds the
same model.
"""
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from core.errors import ConversionError
from core.kerasenv import KERAS3, keras, unreadable_model_reason
from core.kerasgraph import canonical_model
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
    darknet_cfg: Optional[str] = None   # the shipped Darknet cfg a "yolo" entry is built from


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
             _darknet("yolov2-tiny-voc.cfg", "tiny_yolo", 416), darknet_cfg="yolov2-tiny-voc.cfg"),
    ZooEntry("yolo", "YOLO", "yolo", "yolo", (608, 608), "yolo",
             _darknet("yolov2.cfg", "yolo", 608), darknet_cfg="yolov2.cfg"),
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

# Every other convolutional keras.applications family: (application, forge name, preprocessing
# family of its preprocess_input, default input size).  "raw": the model takes 0..255 and
# normalises inside (Rescaling/Normalization layers).
APPLICATIONS = [
    ("VGG19", "vgg_19", "caffe", 224),
    ("ResNet101", "resnet_101", "caffe", 224),
    ("ResNet152", "resnet_152", "caffe", 224),
    ("ResNet50V2", "resnet_50_v2", "tf", 224),
    ("ResNet101V2", "resnet_101_v2", "tf", 224),
    ("ResNet152V2", "resnet_152_v2", "tf", 224),
    ("MobileNetV2", "mobilenet_v2", "tf", 224),
    ("MobileNetV3Small", "mobilenet_v3_small", "raw", 224),
    ("MobileNetV3Large", "mobilenet_v3_large", "raw", 224),
    ("DenseNet121", "densenet_121", "torch", 224),
    ("DenseNet169", "densenet_169", "torch", 224),
    ("DenseNet201", "densenet_201", "torch", 224),
    ("NASNetMobile", "nasnet_mobile", "tf", 224),
    ("NASNetLarge", "nasnet_large", "tf", 331),
    *((f"EfficientNetB{k}", f"efficientnet_b{k}", "raw", size)
      for k, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))),
    *((f"EfficientNetV2{variant}", f"efficientnet_v2_{variant.lower()}", "raw", size)
      for variant, size in (("B0", 224), ("B1", 240), ("B2", 260), ("B3", 300), ("S", 384),
                            ("M", 480), ("L", 480))),
    *((f"ConvNeXt{size_name}", f"convnext_{size_name.lower()}", "raw", 224)
      for size_name in ("Tiny", "Small", "Base", "Large", "XLarge")),
]
ZOO += [ZooEntry(application.lower(), forge_name.upper(), forge_name, family, (size, size),
                 "classifier", _application(application, size))
        for application, forge_name, family, size in APPLICATIONS]

# Detectors with several heads: YOLOv3 and its phone-sized relatives, from the shipped cfgs.
ZOO += [
    ZooEntry("yolov3_tiny", "YOLOV3_TINY", "yolov3_tiny", "yolo", (416, 416), "yolo",
             _darknet("yolov3-tiny.cfg", "yolov3_tiny", 416), darknet_cfg="yolov3-tiny.cfg"),
    ZooEntry("yolov3", "YOLOV3", "yolov3", "yolo", (416, 416), "yolo",
             _darknet("yolov3.cfg", "yolov3", 416), darknet_cfg="yolov3.cfg"),
    ZooEntry("yolov3_spp", "YOLOV3_SPP", "yolov3_spp", "yolo", (416, 416), "yolo",
             _darknet("yolov3-spp.cfg", "yolov3_spp", 416), darknet_cfg="yolov3-spp.cfg"),
    ZooEntry("yolo_fastest", "YOLO_FASTEST", "yolo_fastest", "yolo", (320, 320), "yolo",
             _darknet("yolo-fastest-1.1.cfg", "yolo_fastest", 320),
             darknet_cfg="yolo-fastest-1.1.cfg"),
]

_ALIASES = {"resnet_50": "resnet50", "vgg_16": "vgg16", "mobile_net": "mobilenet",
            "inceptionv3": "inception_v3", "inceptionresnetv2": "inception_resnet_v2",
            "tinyyolo": "tiny_yolo", "yolov2": "yolo", "yolo2": "yolo",
            "tiny_yolo_voc": "tiny_yolo"}


def _compact(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def zoo_entry(spec: str) -> Optional[ZooEntry]:
    """The zoo entry for a name such as ``RESNET_50``, ``resnet50``, ``resnet_50`` or
    ``EfficientNetB0``, else None.  ``NAME@SIZE`` picks another square input size of a
    keras.applications classifier (``MobileNetV3Small@160``)."""
    name, _, size = spec.strip().partition("@")
    key = name.lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    for entry in ZOO:
        if _compact(key) in {_compact(n) for n in (entry.key, entry.constant, entry.forge_name)}:
            return _resized(entry, size) if size else entry
    return None


def _resized(entry: ZooEntry, size: str) -> ZooEntry:
    if not size.isdigit() or entry.kind != "classifier" or entry.trained:
        raise ConversionError(f"{entry.constant}@{size}: an input size is given as a number "
                              "after @, for a keras.applications classifier (e.g. "
                              "MobileNetV3Small@160)")
    side = int(size)
    application = next((a for a, forge_name, *_ in APPLICATIONS if forge_name == entry.forge_name),
                       None) or _SEED_APPLICATIONS[entry.key]
    return replace(entry, key=f"{entry.key}@{side}", forge_name=f"{entry.forge_name}_{side}",
                   input_size=(side, side), build=_application(application, side))


_SEED_APPLICATIONS = {"vgg16": "VGG16", "resnet50": "ResNet50", "inception_v3": "InceptionV3",
                      "inception_resnet_v2": "InceptionResNetV2", "mobilenet": "MobileNet",
                      "xception": "Xception"}


def zoo_names() -> list:
    return [entry.constant for entry in ZOO]


def _register_custom_layers():
    """Import the modules that register the project's custom Keras layers for safe loading."""
    try:
        import core.darknet.layers  # noqa: F401
    except ImportError:
        pass


def unregistered_application_layers() -> dict:
    """Layers Keras 2's keras.applications defines without registering them (ConvNeXt's
    LayerScale and StochasticDepth): a saved ConvNeXt names them and Keras 2 cannot load it
    without being told where they live.  Keras 3 registers its own."""
    if KERAS3:
        return {}
    import sys

    module = sys.modules[keras.applications.ConvNeXtTiny.__module__]
    return {name: getattr(module, name) for name in ("LayerScale", "StochasticDepth")
            if hasattr(module, name)}


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
    kwargs = {"compile": False, "custom_objects": unregistered_application_layers()}
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
        model = canonical_model(load_model_file(spec, unsafe=unsafe))
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
            return canonical_model(entry.build("imagenet", Path(model_dir)))
        except ConversionError:
            raise
        except Exception as exc:  # urllib/HTTP/SSL errors surface as many types
            raise ConversionError(
                f"{entry.constant}: could not fetch the ImageNet weights ({type(exc).__name__}: {exc}). "
                "Use --weights random for seeded random weights, or download the weights file "
                "elsewhere and pass --weights PATH") from exc
    model = canonical_model(entry.build(None, Path(model_dir)))
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
