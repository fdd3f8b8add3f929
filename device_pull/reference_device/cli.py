"""Run a generated Forge builder + Parameters on this host with MPS numerics (the reference device).

Reads ``<Name>Builder.swift`` and the weight files its ``compile`` closure names, runs each image
the way Forge and Metal Performance Shaders would (float16 images, MPS window offsets and edge
modes, Concatenate/Collect rules), and writes what the Forge fork's DocumentDirectoryDumper writes
on a phone, one run flat in ``--out`` (one image) or one folder per image ``<out>/<image stem>/``:
``<model>-<tensor>.floats``, ``shapes-<model>.json`` and the run log ``run-<model>.json`` (image,
manifest hash, top-5 predictions, latency).

``--fault KIND:LAYER`` injects one known conversion bug into one layer (transpose: weights read
with a wrong transpose; stride: (x, y) tuples swapped; bias: bias dropped; garbage: float32
weights read as float16; scale / shift: weights / biases 2 % off, as a BatchNorm folded wrongly
makes them) so a harness can prove it flags that layer first.
"""
import sys

from .forge import ReferenceDeviceError
from .params import FAULT_KINDS


def add_arguments(parser):
    parser.add_argument("builder", metavar="BUILDER.swift", help="the generated (or hand-written) "
                        "Forge network builder")
    parser.add_argument("--param_dir", required=True, metavar="DIR",
                        help="folder with the weight files (<prefix><layer><suffix>.<ext>)")
    parser.add_argument("--images", required=True, nargs="+", metavar="DIR|FILE",
                        help="an image folder or image files")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: the run itself for one image, one folder per image "
                        "for several")
    parser.add_argument("--manifest", metavar="FILE", default=None,
                        help="the conversion's manifest, whose hash the run logs carry (default: "
                        "<param_dir>/<model>.manifest.json when present)")
    parser.add_argument("--dump", choices=("all", "output"), default="all",
                        help="dump every tensor like debugEvaluate (default) or only the output")
    parser.add_argument("--fault", metavar="KIND:LAYER", default=None,
                        help=f"inject a conversion bug into one layer; KIND is one of "
                             f"{', '.join(FAULT_KINDS)}")
    parser.add_argument("--quiet", action="store_true", help="print only errors")


def run(args) -> int:
    from .run import run_reference_device

    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    images = args.images if len(args.images) > 1 else args.images[0]
    try:
        summary = run_reference_device(args.builder, args.param_dir, images, args.out,
                                       dump=args.dump, fault=args.fault, log=say,
                                       manifest=args.manifest)
    except ReferenceDeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in summary["warnings"]:
        say(f"warning: {w}")
    runs = summary["runs"]
    where = (f"one run in {args.out}" if len(runs) == 1
             else f"{len(runs)} run folders in {args.out}")
    say(f"{summary['model']} on the {summary['device']}: {len(runs)} image(s), "
        f"{summary['fps']:.2f} fps (mean latency {summary['latency_s']['mean'] * 1000:.1f} ms); "
        f"wrote {where} (dumps, shapes-{summary['model']}.json, run-{summary['model']}.json)")
    return 0
