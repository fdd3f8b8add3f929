"""Pull the test app's Documents folder (dumps, shapes json, run log) from a USB-connected iPhone.

``python -m device_pull usb --bundle-id ID --out DIR``: copies the app container's
``/Documents`` through the house_arrest service of pymobiledevice3 (the optional extra
``keras2metal[usb]``), then ``python -m device_pull ingest DIR ...`` reads it.  The app must be a
development build (or have UIFileSharingEnabled) for house_arrest to vend its container.
"""
import sys
from pathlib import Path, PurePosixPath

DOCUMENTS = "/Documents"


class UsbError(RuntimeError):
    """No pymobiledevice3, no device, no such app, or a failed copy; the text says what to do."""


def _import_pymobiledevice3():
    try:
        from pymobiledevice3.lockdown import create_using_usbmux
        from pymobiledevice3.services.house_arrest import HouseArrestService
    except ImportError as exc:
        raise UsbError(
            f"pymobiledevice3 is not installed ({exc}); install the optional extra with "
            "`pip install 'keras2metal[usb]'` (or `pip install pymobiledevice3`), or copy the "
            "app's Documents folder with Finder/Xcode and run `python -m device_pull ingest`") \
            from None
    return create_using_usbmux, HouseArrestService


def connect(bundle_id: str, udid=None):
    """An AFC client on the app's container (``listdir``, ``isdir``, ``get_file_contents``)."""
    create_using_usbmux, house_arrest = _import_pymobiledevice3()
    try:
        lockdown = create_using_usbmux(serial=udid)
    except Exception as exc:  # noqa: BLE001 - the library raises many types for "no device"
        which = f"device {udid}" if udid else "a device"
        raise UsbError(f"cannot connect to {which} over USB ({type(exc).__name__}: {exc}); plug "
                       "the iPhone in, unlock it, trust this computer, and check `pymobiledevice3 "
                       "usbmux list`") from None
    try:
        return house_arrest(lockdown, bundle_id=bundle_id, documents_only=False)
    except Exception as exc:  # noqa: BLE001
        raise UsbError(f"cannot open the container of {bundle_id!r} ({type(exc).__name__}: {exc}); "
                       "is the app installed as a development build with this bundle id?") from None


def pull_documents(afc, out_dir, *, root: str = DOCUMENTS, progress=None) -> list:
    """Copy ``root`` of the AFC client recursively into ``out_dir``; returns the local files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    try:
        entries = afc.listdir(root)
    except Exception as exc:  # noqa: BLE001
        raise UsbError(f"cannot list {root} in the app container ({type(exc).__name__}: {exc}); "
                       "has the app run with debug: true yet?") from None
    for name in sorted(entries):
        if name in (".", ".."):
            continue
        remote = str(PurePosixPath(root) / name)
        local = out_dir / name
        if afc.isdir(remote):
            copied += pull_documents(afc, local, root=remote, progress=progress)
            continue
        data = afc.get_file_contents(remote)
        tmp = local.with_name(local.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(local)
        copied.append(local)
        if progress:
            progress(local)
    return copied


def add_arguments(parser):
    parser.add_argument("--bundle-id", required=True, help="the test app's bundle id")
    parser.add_argument("--out", required=True, help="local folder to copy Documents into")
    parser.add_argument("--udid", help="the device's UDID when several are connected")


def run(args) -> int:
    try:
        afc = connect(args.bundle_id, args.udid)
        files = pull_documents(afc, args.out)
    except UsbError as exc:
        print(f"device_pull usb: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(files)} file(s) copied from {args.bundle_id}{DOCUMENTS}")
    if not files:
        print("warning: the Documents folder is empty; run the model tests with debug: true")
    return 0
