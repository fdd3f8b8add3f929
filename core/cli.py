"""``keras2metal MODEL``: convert a Keras model to Forge Swift source plus MPSCNN weight files."""
import argparse
import sys
from pathlib import Path
from typing import NamedTuple, Optional

from core.errors import ConversionError
from core.preprocessing import FAMILIES
from core.zoo import ZOO, zoo_entry

DESCRIPTION = """\
Convert a Keras model (a zoo name or a .h5/.keras file) into what an iOS app needs to run it
with Forge and Metal Performance Shaders:
  <param_dir>/<name>-<layer>.weights.bin / .biases.bin   MPSCNN weights (float32, little-endian)
  <param_dir>/<name>.manifest.json                        every tensor, weight file and total
  <src_out_dir>/<Name>Builder.swift                       a Forge NetworkBuilder class
  <model_dir>/<name>_nobn.keras                           the Keras model with BatchNorm folded

Zoo models: """ + ", ".join(f"{e.constant} ({e.key})" for e in ZOO)

EPILOG = """\
examples:
  keras2metal RESNET_50 --weights random --seed 0
  keras2metal my_model.keras --name my_net --preprocessing tf
  keras2metal MOBILE_NET --weights imagenet      (downloads the ImageNet weights)
"""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command that takes a model shares, with the same meaning everywhere."""
    parser.add_argument("--weights", default=None,
                        help="random (seeded, calibrated: BatchNorm statistics and biases are "
                             "non-trivial), imagenet (download), or a weights file PATH "
                             "(default: random for zoo models, a model file's own weights)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for --weights random; the same seed rebuilds the same model")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras2metal", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL", help="zoo name (e.g. RESNET_50, resnet50) or a "
                        ".h5/.keras model file")
    add_model_arguments(parser)
    parser.add_argument("--name", help="Forge model name: weight-file prefix and builder class "
                        "(default: the zoo name, e.g. resnet_50, or the file's stem)")
    parser.add_argument("--preprocessing", choices=list(FAMILIES),
                        help="input preprocessing of a model file (zoo models know their own): "
                             "caffe = BGR minus ImageNet means, tf = scale to [-1, 1], torch = "
                             "ImageNet mean and std per channel, raw = 0..255 (the model "
                             "normalises itself), yolo/none = RGB in [0, 1]; a one-channel "
                             "model gets Forge's RGB2Gray (0..255) first, mapped the same way")
    parser.add_argument("--param_dir", default="Parameters", help="weights and manifest folder")
    parser.add_argument("--orig_param_dir", default="OriginalParameters",
                        help="where -e writes the unfolded model's arrays")
    parser.add_argument("--src_out_dir", default="generated_src", help="Swift source folder")
    parser.add_argument("--model_dir", default="model_data",
                        help="folder of Keras models: the folded <name>_nobn model is written "
                             "here, and YOLO zoo models are read from here when present")
    parser.add_argument("--image_dir", default=None, help="images for -r (default: the built-in "
                        "sample images)")
    parser.add_argument("--unsafe", action="store_true", help="load model files with Keras safe "
                        "mode off (needed for Lambda layers; only for files you trust)")
    parser.add_argument("-p", "--plot_models", action="store_true",
                        help="also write the Forge graph as <src_out_dir>/<name>.dot and .png")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the Forge summary")
    parser.add_argument("-d", "--debug", action="store_true", help="implies -v; also print the "
                        "generated Swift")
    parser.add_argument("-r", "--run_classifier", action="store_true",
                        help="print top-5 for the images in --image_dir with the original and "
                             "the folded model")
    parser.add_argument("-s", "--save_orig_models", action="store_true",
                        help="save the original model as <model_dir>/<name>.keras")
    parser.add_argument("-e", "--export_orig_weights", action="store_true",
                        help="also write the unfolded model's arrays, in Keras layout, to "
                             "--orig_param_dir (<name>-<layer>.<array>.bin, indexed in "
                             "<name>.original.json)")
    parser.add_argument("-a", "--keep-activations", dest="keep_activations", action="store_true",
                        help="do not fuse activations into the layer before them")
    parser.add_argument("-q", "--quick_run", action="store_true",
                        help="skip checking the folded model against the original")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.verbose = args.verbose or args.debug
    try:
        return run(args)
    except ConversionError as exc:
        print(f"keras2metal: error: {exc}", file=sys.stderr)
        return 2


class ResolvedModel(NamedTuple):
    model: object
    name: str                 # Forge model name
    family: str               # preprocessing family
    kind: str                 # output kind: classifier, yolo or raw
    source: dict              # the manifest's source info
    heads: Optional[list]     # detection head of each output (manifest DetectionHead fields)


def _sidecar_heads(model_path, model) -> Optional[list]:
    """The detection heads yad2k recorded next to a converted Darknet model, if any."""
    from core.yolo import YoloError, heads_from_meta
    from core.yolo.detect import load_meta, output_shapes, sidecar_path

    try:
        meta = load_meta(sidecar_path(model_path))
        if meta is None or not meta.get("heads"):
            return None
        return [h.as_manifest() for h in heads_from_meta(meta, output_shapes(model))]
    except YoloError as exc:
        raise ConversionError(f"{sidecar_path(model_path)}: {exc}; re-run yad2k to write it "
                              "again") from None


def resolve_model(args) -> ResolvedModel:
    """The Keras model, its Forge name, family, output kind, source info and detection heads for
    the MODEL argument."""
    from core.passes import forge_identifier
    from core.yolo_models import zoo_detection_heads, zoo_yolo_model
    from core.zoo import load_model

    entry = zoo_entry(args.model)
    if entry is not None:
        heads = None
        if entry.kind == "yolo":
            model, weights = zoo_yolo_model(entry, args.weights, args.seed, Path(args.model_dir))
            heads = zoo_detection_heads(entry)
        else:
            weights = args.weights or "random"
            model = load_model(args.model, weights, args.seed, model_dir=args.model_dir)
        return ResolvedModel(model, args.name or entry.forge_name, entry.family, entry.kind,
                             {"model": entry.key, "weights": weights, "seed": args.seed}, heads)
    family = args.preprocessing or "none"
    weights = args.weights or "file"
    model = load_model(args.model, weights, args.seed, unsafe=args.unsafe, family=family)
    name = args.name or forge_identifier(Path(args.model).stem.lower())
    heads = _sidecar_heads(args.model, model)
    kind = "yolo" if heads else "classifier" if family in ("caffe", "tf", "torch") else "raw"
    return ResolvedModel(model, name, family, kind, {"model": str(args.model), "weights": weights,
                                                     "seed": args.seed}, heads)


def run(args) -> int:
    from core.convert import convert
    from core.manifest import load_manifest, manifest_hash
    from core.summary import forge_summary, write_graph_plot

    model, name, family, kind, source, heads = resolve_model(args)
    if args.save_orig_models:
        Path(args.model_dir).mkdir(parents=True, exist_ok=True)
        model.save(str(Path(args.model_dir) / f"{name}.keras"))
    if args.export_orig_weights:
        from core.weights import export_original_arrays
        exported = export_original_arrays(model, name, args.orig_param_dir)
        print(f"wrote {len(exported) - 1} original (unfolded) arrays to {args.orig_param_dir}, "
              f"indexed in {exported[-1]}")
    result = convert(model, name=name, family=family, param_dir=args.param_dir,
                     src_out_dir=args.src_out_dir, model_dir=args.model_dir, output_kind=kind,
                     source=source, keep_activations=args.keep_activations,
                     verify=not args.quick_run, heads=heads)
    totals = result.manifest.totals
    added = (f" ({totals.converter_parameters:,} of them in layers the converter adds)"
             if totals.converter_parameters else "")
    print(f"{name}: {totals.layers} layers, {totals.tensors} tensors, "
          f"{totals.parameters:,} parameters{added}")
    if result.fold_check:
        check = result.fold_check
        if check["verified"]:
            print(f"folded model matches the original: max abs error {check['max_abs_error']:.3g} "
                  f"(relative {check['max_relative_error']:.3g}, tolerance "
                  f"{check['tolerance']:.3g}); Keras parameters "
                  f"{check['keras_params_original']:,} -> {check['keras_params_folded']:,}")
        else:
            print(f"warning: folded model NOT verified: the model itself moves its output by "
                  f"{check['float32_noise']:.3g} (relative) when its input moves by a few float32 "
                  f"ulps, so its difference from the folded model "
                  f"({check['max_relative_error']:.3g}) cannot tell a wrong fold from rounding; "
                  "with trained weights such a model is rarely this sensitive", file=sys.stderr)
    for use in result.manifest.custom_kernels or []:
        print(f"custom kernel {use.kernel} for {', '.join(use.keras_layers) or use.tensor}: "
              f"{use.why}")
    for path in result.written:
        print(f"wrote {path}")
    print(f"manifest hash {manifest_hash(load_manifest(result.manifest_path))} (the app's run log "
          "carries it as manifest_sha256, so dumps of another conversion are recognised)")
    if args.verbose:
        print(forge_summary(result.manifest))
    if args.debug:
        print(result.builder_path.read_text())
    if args.plot_models:
        for path in write_graph_plot(result.manifest, Path(args.src_out_dir)):
            print(f"wrote {path}")
    if args.run_classifier:
        from core.summary import classify_images
        print(classify_images(model, result, family, args.image_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
