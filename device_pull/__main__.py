"""``python -m device_pull SUBCOMMAND ...``: one entry point for every way device results come in."""
import argparse
import importlib
import sys

# sub-command name -> module that defines ``add_arguments(parser)`` and ``run(args) -> int``
SUBCOMMANDS = {
    "emulate": "device_pull.reference_device.cli",
    "ingest": "device_pull.ingest_cli",
    "usb": "device_pull.usb",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m device_pull",
        description="Bring device results in: run the reference device, ingest a dump folder "
        "copied off the phone into a store, or pull the folder from a USB-connected iPhone.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not module_name.startswith(exc.name or "\0"):
                raise
            continue
        modules[name] = module
        sub_parser = sub.add_parser(name, help=module.__doc__.strip().splitlines()[0],
                                    description=module.__doc__)
        module.add_arguments(sub_parser)
    args = parser.parse_args(argv)
    return modules[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
