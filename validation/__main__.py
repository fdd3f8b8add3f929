"""``python -m validation COMMAND``: tools around the validation suite (the suite itself runs with
``pytest validation ...``).

    python -m validation schema      the JSON schema of the results file (keras2metal.results/2)
    python -m validation precheck    the float16 range pre-check of a model, before any device run
    python -m validation repro DIR   run a reproducer written by --repro DIR on the reference device
"""
import argparse
import sys

PRECHECK_DESCRIPTION = """\
Will float16 hold this network's numbers?  Converts the model (cached like the suite's
conversions), runs Keras float32 on the images through the device's input path, and checks every
golden activation, every pre-activation inside fused layers, every tensor the phone computes but
Keras has no output for, every weighted layer's partial-sum bound and every weight file as written
against float16: overflow beyond 65504 (error: ±inf on the device), partial sums that can overflow,
precision lost to subnormals (more than 2 bits of the 11) (warnings).  Each finding names the
manifest tensor and its Keras layers, the measured value and threshold, and what to do.

exit status: 0 no error finding (warnings allowed), 1 an error finding, 2 a setup error"""

PRECHECK_EPILOG = """\
examples:
  python -m validation precheck default
  python -m validation precheck resnet50 --weights random --seed 0 --json out/resnet50-precheck.json
  python -m validation precheck my_model.keras --images photos/ --json precheck.json
"""


def _add_precheck(sub):
    from core.cli import add_model_arguments

    p = sub.add_parser("precheck", help="float16 range pre-check of a model (before a device run)",
                       description=PRECHECK_DESCRIPTION, epilog=PRECHECK_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="zoo name (default, resnet50, RESNET_50, ...) "
                   "or a .keras/.h5 model file, as for the suite's --model")
    add_model_arguments(p)
    p.add_argument("--images", nargs="+", metavar="DIR|FILES",
                   help="images to run (default: the model's built-in sample images)")
    p.add_argument("--json", metavar="OUT", help="also write the findings "
                   "(keras2metal.precheck/1) to this file")
    p.add_argument("--validation-cache", metavar="DIR", help="cache folder of conversions and "
                   "stores (default as for the suite: $KERAS2METAL_CACHE or the user cache folder)")


def precheck(args) -> int:
    from pathlib import Path

    from core.atomic import write_text
    from core.contracts import dumps
    from validation.pipeline import Pipeline, Settings, ValidationSetupError
    from validation.precheck import cached_precheck, report_lines

    try:
        pipeline = Pipeline(Settings(model=args.model, weights=args.weights, seed=args.seed,
                                     images=args.images, cache_dir=args.validation_cache),
                            log=lambda msg: print(msg, file=sys.stderr))
        prepared = pipeline.prepare(stores=False)
        prepared.golden_path = pipeline.golden(prepared.manifest_path, prepared.manifest)
        result = cached_precheck(pipeline, prepared)
    except (ValidationSetupError, ValueError, OSError) as exc:
        print(f"ERROR: precheck: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report_lines(result)))
    if args.json:
        write_text(Path(args.json), dumps(result))
        print(f"findings written: {args.json}")
    return 1 if result.errors() else 0


def repro(args) -> int:
    from validation.repro import ReproError, replay_reproducer

    try:
        errors = replay_reproducer(args.folder)
    except (ReproError, ValueError, OSError) as exc:
        print(f"ERROR: repro: {exc}", file=sys.stderr)
        return 2
    import json
    from pathlib import Path

    info = json.loads((Path(args.folder) / "reproducer.json").read_text())
    budget, offset_budget = info["local_budget"], info.get("local_offset_budget")
    reproduces = errors.breaks(budget, offset_budget)
    offset = "" if offset_budget is None or errors.offset is None else (
        f", per-channel offset {errors.offset:.4g} (local offset budget {offset_budget:.4g})")
    verdict = "REPRODUCES the divergence" if reproduces else "does not reproduce it"
    print(f"{info['model']} / {info['tensor']} on the reference device: relative error "
          f"{errors.relative:.4g} against Keras (local budget {budget:.4g}){offset}: {verdict}")
    return 1 if reproduces else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("schema", help="print the JSON schema of the results file")
    _add_precheck(sub)
    r = sub.add_parser("repro", help="run a reproducer (written by pytest validation --repro DIR) "
                       "on the reference device and say whether it shows the divergence",
                       description="Runs the one-layer reproducer's builder and weights on the "
                       "reference device from its input.floats and compares with "
                       "expected.floats.  Exit status 1 when it reproduces the divergence.")
    r.add_argument("folder", metavar="DIR", help="the folder --repro wrote")
    args = parser.parse_args(argv)
    if args.command == "precheck":
        return precheck(args)
    if args.command == "repro":
        return repro(args)
    import json

    from core.contracts import schema
    from validation.verdicts import Results

    print(json.dumps(schema(Results), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
