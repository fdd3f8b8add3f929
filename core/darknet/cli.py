"""``yad2k CFG WEIGHTS OUT.keras|OUT.h5 [-p] [--fully-convolutional]``: Darknet -> Keras."""
from __future__ import annotations

import argparse
import os
import sys

from .errors import DarknetError


def _size(text: str):
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or HxW, e.g. 416 or 320x608") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or HxW with positive integers")
    return tuple(values)


def _parents(folder: str) -> list:
    """``folder`` and the folders above it, nearest first."""
    out = [folder]
    while os.path.dirname(out[-1]) != out[-1]:
        out.append(os.path.dirname(out[-1]))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="yad2k", description="Darknet to Keras converter: writes the Keras model, "
        "<out>_anchors.txt (detectors) and <out>_darknet.json (heads, classes, header).")
    p.add_argument("cfg", help="Darknet .cfg file")
    p.add_argument("weights", help="Darknet .weights file")
    p.add_argument("output", help="output model, ending in .keras or .h5 (its folder is "
                   "created when missing)")
    p.add_argument("-p", "--plot-model", "--plot_model", dest="plot", action="store_true",
                   help="also write <out>.png with the model graph")
    p.add_argument("-flcl", "--fully-convolutional", "--fully_convolutional", dest="fc",
                   action="store_true", help="input of any height and width (None, None, C)")
    p.add_argument("--allow-extra", action="store_true",
                   help="ignore bytes left over after the last layer instead of failing")
    p.add_argument("--input-size", type=_size, default=None, metavar="N|HxW",
                   help="override the [net] height and width")
    p.add_argument("--reorg", choices=("darknet", "space_to_depth"), default="darknet",
                   help="[reorg] as Darknet computes it (default) or TensorFlow's space_to_depth")
    p.add_argument("-q", "--quiet", action="store_true", help="no model summary")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = os.path.expanduser(args.output)
    if os.path.splitext(out)[1].lower() not in (".keras", ".h5"):
        print(f"yad2k: error: {out}: the output must end in .keras or .h5", file=sys.stderr)
        return 2
    folder = os.path.dirname(os.path.abspath(out))
    blocking = next((p for p in _parents(folder) if os.path.exists(p) and not os.path.isdir(p)),
                    None)
    if blocking:
        print(f"yad2k: error: output folder {folder} cannot be created: {blocking} is a file; "
              "choose another output path", file=sys.stderr)
        return 2
    from .converter import convert, output_root, save_converted
    try:
        model, meta = convert(os.path.expanduser(args.cfg), os.path.expanduser(args.weights),
                              fully_convolutional=args.fc, allow_extra=args.allow_extra,
                              input_size=args.input_size, reorg=args.reorg)
    except DarknetError as exc:
        print(f"yad2k: error: {exc}", file=sys.stderr)
        return 1
    hdr = meta.header
    print(f"Weights header: version {hdr['major']}.{hdr['minor']}.{hdr['revision']} "
          f"({hdr['header_bytes']} bytes), seen {hdr['seen']}")
    extra = getattr(meta, "extra_bytes", 0)
    print(f"Read {meta.floats} of {meta.floats} floats from {args.weights}"
          + (f" (ignored {extra} extra bytes)" if extra else ""))
    if not args.quiet:
        model.summary()
    print(f"Parameters: {model.count_params()}")
    written = save_converted(model, meta, out)
    print(f"Saved Keras model to {written['model']}")
    if "anchors" in written:
        print(f"Saved anchors to {written['anchors']}")
    if meta.classes is not None:
        print(f"Classes: {meta.classes}")
    print(f"Saved Darknet metadata to {written['meta']}")
    if args.plot:
        from .plot import plot_model
        png = plot_model(model, output_root(out) + ".png")
        print(f"Saved model plot to {png}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
