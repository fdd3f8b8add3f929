"""``python -m validation COMMAND``: tools around the validation suite (the suite itself runs with
``pytest validation ...``).

    python -m validation schema      the JSON schema of the results file (keras2metal.results/2)
"""
import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("schema", help="print the JSON schema of the results file")
    args = parser.parse_args(argv)
    if args.command == "schema":
        from core.contracts import schema
        from validation.verdicts import Results

        print(json.dumps(schema(Results), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
