"""``python -m reports``: the report, ``featuremaps``, ``compare`` and ``benchmarks`` commands.

    python -m reports RESULTS.json... --out REPORT.md [--plots DIR] [--date D]
    python -m reports featuremaps A B --tensor NAME --out PNG [--image KEY] [--max-channels N]
    python -m reports compare DIR_A DIR_B [--out MD]
    python -m reports benchmarks BENCH.json... --out MD
    python -m reports diff A.json B.json --out MD [--plot PNG]
    python -m reports coverage RESULTS.json... [MANIFEST.json...] --readme README.md
    python -m reports matrix ENV_DIR... [--readme README.md] [--out MD]
"""
import argparse
import sys

COMMANDS = ("featuremaps", "compare", "benchmarks", "diff", "coverage", "matrix")


def _report_parser():
    p = argparse.ArgumentParser(
        prog="python -m reports",
        description="Markdown report over validation results files (`pytest validation ... "
        "--results FILE`). Other commands: " + ", ".join(COMMANDS) +
        " (python -m reports COMMAND --help).")
    p.add_argument("results", nargs="+", metavar="RESULTS.json", help="results files")
    p.add_argument("--out", required=True, metavar="REPORT.md", help="markdown file to write")
    p.add_argument("--plots", metavar="DIR", help="also draw error-by-depth PNGs into DIR")
    p.add_argument("--date", help="a date to print in the report (none by default, so reports "
                   "diff cleanly)")
    return p


def _featuremaps_parser():
    p = argparse.ArgumentParser(
        prog="python -m reports featuremaps",
        description="Draw one tensor of two sources side by side: A | B | |A - B|, every "
        "channel a tile. A source is a store (.h5 of golden or device_pull), a dump folder "
        "(<model>-<tensor>.floats + shapes json) or a .floats file.")
    p.add_argument("a", metavar="STORE_A", help="store, dump folder or .floats file (e.g. golden)")
    p.add_argument("b", metavar="STORE_B", help="store, dump folder or .floats file (e.g. device)")
    p.add_argument("--tensor", required=True, help="Forge tensor name (dump: <model>-NAME.floats)")
    p.add_argument("--out", required=True, metavar="PNG", help="picture to write")
    p.add_argument("--image", metavar="KEY", help="image key in the stores (default: the first)")
    p.add_argument("--max-channels", type=int, default=256,
                   help="tile at most this many channels (default 256)")
    return p


def _compare_parser():
    p = argparse.ArgumentParser(
        prog="python -m reports compare",
        description="Per-file error table of two dump folders (files with the same name) or two "
        ".floats files: max abs, mean abs, relative error ||A-B||/||A||, min/avg/max of each side.")
    p.add_argument("a", metavar="DIR_A")
    p.add_argument("b", metavar="DIR_B")
    p.add_argument("--out", metavar="MD", help="also write the table to this markdown file")
    return p


def _benchmarks_parser():
    p = argparse.ArgumentParser(
        prog="python -m reports benchmarks",
        description="pytest-benchmark JSON files (pytest --benchmark-json) → markdown table of "
        "times and ratios; with several files, ratios to the first.")
    p.add_argument("files", nargs="+", metavar="BENCH.json")
    p.add_argument("--out", required=True, metavar="MD")
    return p


def _diff_parser():
    p = argparse.ArgumentParser(
        prog="python -m reports diff",
        description="Per-layer differences between two validation runs or two baselines (e.g. "
        "Keras 2 vs Keras 3, iPhone 7 vs iPhone X): each side's errors and the ratio B/A, "
        "tensor by tensor, and a picture of both sides' relative error by depth.")
    p.add_argument("a", metavar="A.json", help="results file or baseline")
    p.add_argument("b", metavar="B.json", help="results file or baseline")
    p.add_argument("--out", required=True, metavar="MD", help="markdown file to write")
    p.add_argument("--plot", metavar="PNG", help="also draw relative error by depth")
    return p


def _coverage_parser():
    p = argparse.ArgumentParser(
        prog="python -m reports coverage",
        description="The README's coverage table (family, input size, Forge layers, custom "
        "kernels, tensors, parameters, the validation verdict under each Keras) from results "
        "files and the conversions' manifests, written between the README's coverage markers.")
    p.add_argument("files", nargs="+", metavar="FILE.json", help="results files and manifests")
    p.add_argument("--readme", required=True, metavar="README.md", help="the file to update")
    return p


def _matrix_parser():
    p = argparse.ArgumentParser(
        prog="python -m reports matrix",
        description="The Keras-version matrix (networks × environments: converts, validates, "
        "device files identical to the first environment's, with every difference explained) "
        "from the entries the whole-network tests record in each environment (tox: "
        ".tox/matrix/ENV).")
    p.add_argument("folders", nargs="+", metavar="ENV_DIR",
                   help="one folder of entries per environment; the first is the reference")
    p.add_argument("--readme", metavar="README.md",
                   help="write the table between the matrix marker comments of this file")
    p.add_argument("--out", metavar="MD", help="also write the table to this markdown file")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from reports.benchmarks import BenchmarkError
    from reports.dumps import DumpError
    from reports.matrix import MatrixError
    from reports.results import ResultsError

    try:
        if argv and argv[0] == "featuremaps":
            args = _featuremaps_parser().parse_args(argv[1:])
            from reports.dumps import load_tensor
            from reports.plots import featuremap_grid

            a, label_a = load_tensor(args.a, args.tensor, args.image)
            b, label_b = load_tensor(args.b, args.tensor, args.image)
            try:
                out = featuremap_grid(a, b, args.out, label_a="A", label_b="B",
                                      title=f"{args.tensor}: A = {label_a}, B = {label_b}",
                                      max_channels=args.max_channels)
            except ValueError as exc:
                raise DumpError(f"{args.a}, {args.b}: tensor {args.tensor!r}: {exc}") from None
            print(out)
        elif argv and argv[0] == "compare":
            args = _compare_parser().parse_args(argv[1:])
            from reports import fmt
            from reports.dumps import compare_dirs, compare_table

            table = compare_table(compare_dirs(args.a, args.b))
            print(f"A: {args.a}\nB: {args.b}\n\n{table}")
            if args.out:
                fmt.write_markdown(args.out, f"A: `{args.a}`\n\nB: `{args.b}`\n\n{table}")
        elif argv and argv[0] == "benchmarks":
            args = _benchmarks_parser().parse_args(argv[1:])
            from reports.benchmarks import write_benchmarks

            print(write_benchmarks(args.files, args.out))
        elif argv and argv[0] == "coverage":
            args = _coverage_parser().parse_args(argv[1:])
            from reports.coverage import write_coverage

            print(write_coverage(args.files, args.readme))
        elif argv and argv[0] == "diff":
            args = _diff_parser().parse_args(argv[1:])
            from reports.diff import write_diff

            print(write_diff(args.a, args.b, args.out, args.plot))
        elif argv and argv[0] == "matrix":
            args = _matrix_parser().parse_args(argv[1:])
            from reports.matrix import write_matrix

            print(write_matrix(args.folders, readme=args.readme, out=args.out), end="")
        else:
            args = _report_parser().parse_args(argv)
            from reports.markdown import write_report

            print(write_report(args.results, args.out, args.plots, args.date))
    except (ResultsError, DumpError, BenchmarkError, MatrixError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
