"""``python -m reports compare``: the per-file error table of two dump folders."""
import json

import numpy as np

from reports.__main__ import main
from reports.dumps import compare_dirs


def _dumps(tmp_path):
    a, b = tmp_path / "keras", tmp_path / "device"
    a.mkdir()
    b.mkdir()
    x = np.linspace(-1, 1, 60, dtype=np.float32)
    x.tofile(a / "net-conv1.floats")
    (x + 0.001).tofile(b / "net-conv1.floats")
    x.tofile(a / "net-input.floats")
    x.tofile(b / "net-input.floats")
    x[:50].tofile(a / "net-fc.floats")
    x.tofile(b / "net-fc.floats")
    x.tofile(a / "net-only_keras.floats")
    x.tofile(b / "net-only_device.floats")
    (a / "shapes.json").write_text(json.dumps({"net-conv1.floats": [3, 4, 5, 1]}))
    (b / "shapes-net.json").write_text(json.dumps({"net-conv1.floats": [4, 3, 5, 1]}))
    return a, b


def test_compare_rows(tmp_path):
    a, b = _dumps(tmp_path)
    rows = {r["file"]: r for r in compare_dirs(a, b)}
    assert list(rows) == sorted(rows)
    conv = rows["net-conv1.floats"]
    assert conv["status"] == "ok"
    assert abs(conv["max_abs"] - 0.001) < 1e-6 and abs(conv["mean_abs"] - 0.001) < 1e-6
    assert conv["rel_error"] > 0 and conv["min_a"] == -1.0 and conv["max_b"] > 1.0
    assert rows["net-input.floats"]["max_abs"] == 0.0
    assert rows["net-input.floats"]["rel_error"] == 0.0
    fc = rows["net-fc.floats"]
    assert fc["status"] == "size mismatch" and (fc["size_a"], fc["size_b"]) == (50, 60)
    assert rows["net-only_keras.floats"]["status"] == "only in A"
    assert rows["net-only_device.floats"]["status"] == "only in B"


def test_compare_cli_prints_markdown(tmp_path, capsys):
    a, b = _dumps(tmp_path)
    out = tmp_path / "cmp.md"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| file" in printed and "size mismatch" in printed and "1.00e-03" in printed
    assert "`net-conv1.floats`" in out.read_text()
    # two files
    assert main(["compare", str(a / "net-conv1.floats"), str(b / "net-conv1.floats")]) == 0
    assert "`net-conv1.floats`" in capsys.readouterr().out
    assert main(["compare", str(a), str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
