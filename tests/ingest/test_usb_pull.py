"""USB pull against a fake pymobiledevice3 (lockdown + house_arrest AFC), and its clear errors."""
import sys
import types

import pytest

from device_pull import usb
from device_pull.__main__ import main

FILES = {                                   # the app's container after one debug run
    "/Documents/run-toy.json": b'{"model": "toy", "image": "dog.jpg"}',
    "/Documents/toy-conv1.floats": b"\0" * 16,
    "/Documents/shapes-toy.json": b"{}",
    "/Documents/Inbox/mail.eml": b"kept as the phone has it",
    "/Library/Caches/x": b"not pulled",
}


class FakeAfc:
    def __init__(self, files):
        self.files = files

    def _children(self, path):
        prefix = path.rstrip("/") + "/"
        return {p[len(prefix):].split("/")[0] for p in self.files if p.startswith(prefix)}

    def listdir(self, path):
        children = self._children(path)
        if not children:
            raise FileNotFoundError(path)
        return [".", ".."] + sorted(children)

    def isdir(self, path):
        return bool(self._children(path))

    def get_file_contents(self, path):
        return self.files[path]


def _fake_pymobiledevice3(monkeypatch, *, device=True, app=True, calls=None):
    calls = calls if calls is not None else []
    root = types.ModuleType("pymobiledevice3")
    lockdown = types.ModuleType("pymobiledevice3.lockdown")
    services = types.ModuleType("pymobiledevice3.services")
    house_arrest = types.ModuleType("pymobiledevice3.services.house_arrest")

    def create_using_usbmux(serial=None):
        calls.append(("usbmux", serial))
        if not device:
            raise ConnectionError("No device connected")
        return "lockdown-client"

    def service(lockdown_client, bundle_id, documents_only=False):
        calls.append(("house_arrest", lockdown_client, bundle_id, documents_only))
        if not app:
            raise LookupError(f"{bundle_id} is not installed")
        return FakeAfc(FILES)

    lockdown.create_using_usbmux = create_using_usbmux
    house_arrest.HouseArrestService = service
    for name, module in [("pymobiledevice3", root), ("pymobiledevice3.lockdown", lockdown),
                         ("pymobiledevice3.services", services),
                         ("pymobiledevice3.services.house_arrest", house_arrest)]:
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_pull_documents_from_fake_device(tmp_path, monkeypatch, capsys):
    calls = _fake_pymobiledevice3(monkeypatch)
    out = tmp_path / "Documents"
    rc = main(["usb", "--bundle-id", "com.example.ForgeTests", "--out", str(out),
               "--udid", "0000-1111"])
    assert rc == 0
    assert (out / "run-toy.json").read_bytes() == b'{"model": "toy", "image": "dog.jpg"}'
    assert (out / "toy-conv1.floats").stat().st_size == 16
    assert (out / "shapes-toy.json").exists() and (out / "Inbox" / "mail.eml").exists()
    assert not (out / "Library").exists() and not list(out.rglob("*.part"))
    assert ("usbmux", "0000-1111") in calls
    assert ("house_arrest", "lockdown-client", "com.example.ForgeTests", False) in calls
    assert "4 file(s) copied" in capsys.readouterr().out


def test_missing_package_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pymobiledevice3", None)
    monkeypatch.delitem(sys.modules, "pymobiledevice3.lockdown", raising=False)
    rc = main(["usb", "--bundle-id", "x.y", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "pymobiledevice3 is not installed" in err and "keras2metal[usb]" in err


def test_missing_device_is_a_clear_error(tmp_path, monkeypatch, capsys):
    _fake_pymobiledevice3(monkeypatch, device=False)
    rc = main(["usb", "--bundle-id", "x.y", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cannot connect to a device over USB" in err and "trust this computer" in err


def test_missing_app_is_a_clear_error(tmp_path, monkeypatch):
    _fake_pymobiledevice3(monkeypatch, app=False)
    with pytest.raises(usb.UsbError, match="x.y.*development build"):
        usb.connect("x.y")


def test_empty_container(tmp_path):
    with pytest.raises(usb.UsbError, match="cannot list /Documents"):
        usb.pull_documents(FakeAfc({"/Library/a": b""}), tmp_path / "o")
