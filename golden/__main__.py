"""``python -m golden capture MODEL --manifest M --images DIR|FILES --out STORE.h5``."""
import argparse
import sys
from pathlib import Path

from imagesets.images import ImageError
from core.manifest import ManifestError, load_manifest


def _add_capture(sub):
    p = sub.add_parser(
        "capture", help="run Keras on images and store every manifest tensor's activation",
        description="Run the original Keras model (and with --folded the folded _nobn model) on "
        "the images with exactly the device's input path (8-bit image -> [0, 1] -> the "
        "manifest's preprocessing) and store, for every manifest tensor, its Keras counterpart "
        "as float32 HWC in an HDF5 store (stores.store).")
    p.add_argument("model", metavar="MODEL",
                   help="zoo name (resnet50, RESNET_50, ...) or a .h5/.keras file, as for keras2metal")
    p.add_argument("--manifest", required=True, help="<param_dir>/<name>.manifest.json")
    p.add_argument("--images", required=True, nargs="+", metavar="DIR|FILE",
                   help="a folder of images and/or image files")
    p.add_argument("--out", required=True, help="the golden store to write (.h5)")
    p.add_argument("--weights", default="random",
                   help="random | imagenet | file (a model file's own weights) | a weights file, as for "
                   "keras2metal (default random)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights (default 0)")
    p.add_argument("--batch", type=int, default=1, help="images per Keras batch (default 1)")
    p.add_argument("--folded", action="store_true",
                   help="also run the folded model of the manifest's source.folded_model (/folded)")
    p.add_argument("--precision", choices=("float32", "float16"), default="float32",
                   help="float16 runs Keras itself in float16, to see the float16 error floor")
    p.add_argument("--floats", metavar="DIR",
                   help="also write the original tool's per-layer .floats files (one folder per image)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_model(spec: str, weights: str = "random", seed: int = 0):
    """MODEL as keras2metal reads it (core.zoo), or a .h5/.keras file when the zoo is absent."""
    try:
        from core.zoo import load_model as zoo_load
    except ModuleNotFoundError as exc:
        if exc.name not in ("core.zoo", "core"):
            raise
        zoo_load = None
    if zoo_load is not None:
        return zoo_load(spec, weights=weights, seed=seed)
    path = Path(spec)
    if path.suffix in (".h5", ".keras") and path.is_file():
        from core.kerasenv import keras

        model = keras.models.load_model(path, compile=False)
        if weights not in ("random", "imagenet", "file", None, ""):
            model.load_weights(weights)
        return model
    raise ValueError(f"MODEL {spec!r}: not a .h5/.keras file, and the model zoo (core.zoo) is not "
                     "available to build zoo models; pass a saved Keras model")


def load_folded(manifest):
    """The folded _nobn model named by the manifest (source.folded_model, relative to it)."""
    rel = manifest.source.folded_model
    if not rel:
        raise ValueError(f"{manifest.path}: source.folded_model is null, so there is no "
                         "folded model to run; drop --folded or re-run keras2metal")
    path = Path(manifest.path).parent / rel
    if not path.is_file():
        raise ValueError(f"{path}: folded model named by the manifest does not exist; "
                         "re-run keras2metal")
    try:
        from core.zoo import load_model_file   # registers the project's custom layers
    except ImportError:
        from core.kerasenv import keras

        return keras.models.load_model(path, compile=False)
    return load_model_file(path)


def capture(args) -> int:
    from golden.capture import GoldenError, capture_golden

    try:
        manifest = load_manifest(args.manifest)
        from core.kerasenv import keras

        keras.backend.clear_session()      # unnamed layers get the names the converter gave them
        model = load_model(args.model, args.weights, args.seed)
        folded = load_folded(manifest) if args.folded else None
        summary = capture_golden(model, manifest, args.images, args.out, folded_model=folded,
                                 precision=args.precision, batch=args.batch,
                                 floats_dir=args.floats, progress=not args.no_progress)
    except (ManifestError, ImageError, GoldenError, ValueError, OSError) as exc:
        print(f"golden capture: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {summary['images']} image(s) x {summary['tensors']} tensor(s) "
          f"of {manifest.name} in {summary['seconds']:.1f} s")
    print(f"{'status':<16}{'count':>8}")
    for status, count in sorted(summary["statuses"].items()):
        print(f"{status:<16}{count:>8}")
    if "folded_max_abs_diff" in summary:
        diffs = summary["folded_max_abs_diff"]
        worst = max(diffs.items(), key=lambda kv: kv[1], default=(None, 0.0))
        print(f"folded vs original: max abs diff {worst[1]:.3g}"
              + (f" (tensor {worst[0]})" if worst[0] else ""))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m golden",
                                     description="Golden activations of a Keras model.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_capture(sub)
    args = parser.parse_args(argv)
    return {"capture": capture}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
