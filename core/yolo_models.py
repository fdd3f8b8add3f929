"""YOLO zoo models: built from the shipped Darknet cfgs, or taken from ``--model_dir``; their
detection heads (what core.yolo decodes) come from the same cfg."""
import sys
from pathlib import Path

from core.errors import ConversionError
from core.seeding import seeded_init

CFG_DIR = Path(__file__).parent / "data" / "darknet-cfg"


def build_from_cfg(cfg_name: str, size: int):
    """The Keras model of a shipped Darknet cfg (weights to be set by the caller)."""
    from core.darknet import build_keras_model, build_plan
    return build_keras_model(build_plan(CFG_DIR / cfg_name, input_size=(size, size)))


def zoo_yolo_model(entry, weights, seed: int, model_dir: Path):
    """(model, weights description): --weights random | PATH(.weights/.keras/.h5) | unset."""
    from core.zoo import load_model_file

    size = entry.input_size[0]
    cfg = entry.darknet_cfg
    if weights is None:
        candidates = (model_dir / f"{entry.forge_name}.keras", model_dir / f"{entry.forge_name}.h5")
        for candidate in candidates:
            if candidate.exists():
                return load_model_file(candidate), str(candidate)
        weights_file = Path(cfg).with_suffix(".weights").name
        print(f"keras2metal: warning: {entry.constant}: neither {candidates[0]} nor "
              f"{candidates[1]} exists, so the network gets RANDOM weights (seed {seed}) and "
              f"will detect nothing. Make the file from Darknet's weights with yad2k: `yad2k "
              f"{CFG_DIR / cfg} {weights_file} {candidates[0]}` ({weights_file} from "
              f"https://pjreddie.com/media/files/{weights_file}), or pass --weights random to "
              "choose random weights on purpose", file=sys.stderr)
        weights = "random"
    if weights == "random":
        model = build_from_cfg(cfg, size)
        seeded_init(model, seed, entry.family)
        return model, "random"
    if weights == "imagenet":
        raise ConversionError(f"{entry.constant}: there are no ImageNet weights for YOLO; convert "
                              f"the Darknet weights (yad2k {cfg} FILE.weights "
                              f"{model_dir}/{entry.forge_name}.keras) or use --weights random")
    path = Path(weights)
    if path.suffix == ".weights":
        from core.darknet import convert as darknet_convert
        model, _ = darknet_convert(CFG_DIR / cfg, path)
        return model, str(path)
    return load_model_file(path), str(path)


def zoo_detection_heads(entry) -> list:
    """The manifest heads (core.manifest.DetectionHead fields) of a zoo detector, one per model
    output, from its cfg at the zoo's input size."""
    from core.darknet import build_plan
    from core.darknet.converter import output_heads
    from core.yolo import HeadSpec

    plan = build_plan(CFG_DIR / entry.darknet_cfg, input_size=entry.input_size)
    return [HeadSpec.from_meta(head).as_manifest() for head in output_heads(plan)]
