"""Ingest a dump folder (copied off the phone or written by the reference device) into a store.

``python -m device_pull ingest DUMPDIR --manifest M --out STORE.h5``: DUMPDIR is what the phone
writes — the app's Documents folder after one debug run (``<model>-*.floats``,
``shapes-<model>.json``, optionally ``run-<model>.json`` and a console log, flat: one image), or
one such folder per image side by side (named after the image), or a folder of copied Documents
folders (see device_pull.ingest for the rules that name each run's image, and for the file
layouts).  One dataset per image and manifest tensor is written with its status.  Bad tensors are
recorded, not fatal; a folder that cannot be read as a dump (unknown layout, an image nobody
names, no manifest) is one error message and exit status 2.
"""
from imagesets.images import ImageError
from core.manifest import ManifestError
from stores.store import fix_for

MAX_LINES = 20


def add_arguments(parser):
    parser.add_argument("dump_dir", metavar="DUMPDIR",
                        help="the app's Documents folder as copied off the phone (one image), a "
                        "folder of such folders (one per image), or what `device_pull emulate` "
                        "wrote")
    parser.add_argument("--manifest", required=True, help="<param_dir>/<name>.manifest.json")
    parser.add_argument("--out", required=True, help="the device store to write (.h5)")
    parser.add_argument("--layout", choices=("auto", "interleaved", "padded"), default="auto",
                        help="how to read files whose size fits both interleaved and padded "
                        "slices (C %% 4 == 0); auto = interleaved, Forge's dumper (default)")
    parser.add_argument("--dtype", choices=("auto", "float32", "float16"), default="auto",
                        help="element type of the dumps; auto decides by size, and in a run "
                        "of float32 dumps takes a file of the float16 size as cut short "
                        "(default)")
    parser.add_argument("--image", metavar="NAME",
                        help="the image of a flat (one image) dump folder, as file name or stem "
                        "(default: named by its run log or console log)")
    parser.add_argument("--images", nargs="+", metavar="DIR|FILE",
                        help="the images that were run: one image names a flat dump folder's "
                        "image; they also give __Input__ its shape")
    parser.add_argument("--console", metavar="LOG",
                        help="Xcode console log of a one-image dump (default: *.log or "
                        "console*.txt in each run folder)")
    parser.add_argument("--device", help="device name when the run log has none")


def print_summary(report, out=print):
    out(f"{report.out}: {len(report.images)} image(s) of {report.model}: " + ", ".join(
        f"{image} (named by {report.named_by[image]})" for image in report.images))
    out(f"{'status':<16}{'tensors':>8}")
    for status, count in sorted(report.statuses.items()):
        out(f"{status:<16}{count:>8}")
    if report.layouts:
        out("layouts: " + ", ".join(f"{k} {v}" for k, v in sorted(report.layouts.items())))
    if report.layout_rule:
        out(f"layout rule: {report.layout_rule} file(s) fit both interleaved and padded slices "
            "(C % 4 == 0) and were read as interleaved (Forge's dumper); pass --layout padded "
            "if they came from toFloatArray()")
    if report.problems:
        out("problems:")
        for image, name, status, reason in report.problems[:MAX_LINES]:
            out(f"  {image}/{name}: {status}: {reason}")
        if len(report.problems) > MAX_LINES:
            out(f"  ... and {len(report.problems) - MAX_LINES} more (see the store's status "
                "and reason attributes)")
        for status in sorted({status for _, _, status, _ in report.problems}):
            out(f"fix ({status}): {fix_for(status)}")
    for image, files in report.ignored.items():
        out(f"ignored in {image}: {len(files)} unknown file(s): " + ", ".join(files[:MAX_LINES])
            + (" ..." if len(files) > MAX_LINES else ""))
    for warning in report.warnings:
        out(f"warning: {warning}")


def run(args) -> int:
    import sys

    from device_pull.ingest import IngestError, ingest_dump

    try:
        report = ingest_dump(args.dump_dir, args.manifest, args.out, layout=args.layout,
                             dtype=args.dtype, image=args.image, images=args.images,
                             console_log=args.console, device=args.device)
    except (ManifestError, IngestError, ImageError, OSError) as exc:
        print(f"device_pull ingest: error: {exc}", file=sys.stderr)
        return 2
    print_summary(report)
    return 0
