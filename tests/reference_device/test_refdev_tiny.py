"""The reference device on a builder written by hand in the Forge fork's style, against Keras."""
import json

import numpy as np
import pytest

from refdev_support import TINY_REFERENCE, rel_error
from device_pull.reference_device import ReferenceDevice, run_reference_device


@pytest.fixture(scope="module")
def tiny_run(tiny_fork, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_out")
    log = run_reference_device(tiny_fork.builder, tiny_fork.params, tiny_fork.images, out)
    return out, log


def load_dump(folder, model, tensor, shapes):
    fname = f"{model}-{tensor}.floats"
    w, h, c, n = shapes[fname]
    data = np.fromfile(folder / fname, dtype="<f4")
    if w == -1:
        return data
    return data.reshape(n, h, w, c)[0]


def test_every_tensor_matches_keras(tiny_fork, tiny_run):
    out, log = tiny_run
    for image in ("sample", "other"):
        folder = out / image
        shapes = json.loads((folder / "shapes-tiny_fork.json").read_text())
        for tensor, keras_layer in TINY_REFERENCE.items():
            got = load_dump(folder, "tiny_fork", tensor, shapes)
            want = tiny_fork.refs[image][keras_layer]
            if want.ndim == 1:                      # Dense/Softmax after Flatten: 1x1xN
                want = want.reshape(1, 1, -1)
            assert got.shape == want.shape, (tensor, got.shape, want.shape)
            err = rel_error(got, want)
            assert err < 1.5e-2, f"{image}/{tensor}: max relative error {err:.4g}"


def test_dump_files_are_the_phones(tiny_run):
    out, log = tiny_run
    shapes = json.loads((out / "sample" / "shapes-tiny_fork.json").read_text())
    expected = {f"tiny_fork-{t}.floats" for t in TINY_REFERENCE} | {
        "tiny_fork-__Input__.floats", "tiny_fork-__Resize_2__.floats"}
    assert set(shapes) == expected            # no Collect file, concat inputs sliced out
    assert shapes["tiny_fork-__Input__.floats"] == [-1, -1, -1, 1]
    assert shapes["tiny_fork-__Concat_mixed__.floats"] == [16, 16, 36, 1]
    assert shapes["tiny_fork-branch_b2.floats"] == [16, 16, 12, 1]
    assert shapes["tiny_fork-__Softmax_25__.floats"] == [1, 1, 10, 1]
    for name, (w, h, c, n) in shapes.items():
        size = (out / "sample" / name).stat().st_size
        if w != -1:
            assert size == w * h * c * n * 4, name
    assert not list(out.rglob("*.tmp"))


def test_input_dump_is_raw_bgr_bytes(tiny_fork, tiny_run):
    from PIL import Image

    out, _ = tiny_run
    raw = np.fromfile(out / "sample" / "tiny_fork-__Input__.floats", "<f4").reshape(32, 32, 3)
    rgb = np.asarray(Image.open(tiny_fork.images / "sample.png").convert("RGB"))
    np.testing.assert_array_equal(raw, rgb[:, :, ::-1].astype(np.float32))
    resized = np.fromfile(out / "sample" / "tiny_fork-__Resize_2__.floats", "<f4").reshape(32, 32, 3)
    np.testing.assert_array_equal(resized, (rgb / 255.0).astype(np.float16).astype(np.float32))


def test_run_log_and_top5(tiny_fork, tiny_run):
    """One run log per image folder, as a phone app writes it into its Documents folder."""
    out, summary = tiny_run
    assert sorted(p.name for p in out.iterdir()) == ["other", "sample"]    # nothing at the top
    for image in ("other", "sample"):
        disk = json.loads((out / image / "run-tiny_fork.json").read_text())
        assert disk["image"] == f"{image}.png"
        assert disk["model"] == "tiny_fork" and disk["device"] == "reference device"
        assert disk["fault"] is None and disk["output_tensor"] == "__Softmax_25__"
        assert disk["manifest_sha256"] is None          # a hand-written builder has no manifest
        assert {"platform", "cpu", "numpy"} <= set(disk["host"])
        ref = tiny_fork.refs[image]["softmax"].reshape(-1)
        assert [t["index"] for t in disk["top5"]] == list(np.argsort(-ref, kind="stable")[:5])
        assert abs(disk["top5"][0]["probability"] - ref.max()) < 2e-3
        assert len(disk["latency_s"]) == 1 and disk["latency_s"][0] > 0
        assert disk["resized"] is False
        assert disk["layers"] == 22 and disk["tensors"] == 25
    assert [run["image"] for run in summary["runs"]] == ["other.png", "sample.png"]
    assert summary["fps"] > 0 and summary["latency_s"]["min"] <= summary["latency_s"]["max"]


def test_dump_output_only(tiny_fork, tmp_path):
    log = run_reference_device(tiny_fork.builder, tiny_fork.params,
                               tiny_fork.images / "sample.png", tmp_path, dump="output")
    files = sorted(p.name for p in tmp_path.iterdir())          # one image: flat
    assert files == ["run-tiny_fork.json", "shapes-tiny_fork.json",
                     "tiny_fork-__Softmax_25__.floats"]
    assert log["dump"] == "output"


def test_forward_is_deterministic_and_float16(tiny_fork):
    from PIL import Image

    dev = ReferenceDevice(tiny_fork.builder, tiny_fork.params)
    img = np.asarray(Image.open(tiny_fork.images / "sample.png").convert("RGBA"))
    a = dev.forward(img)["output"]
    b = dev.forward(img)["output"]
    assert a.dtype == np.float16 and a.shape == (1, 1, 10)
    np.testing.assert_array_equal(a, b)


def test_resize_is_lanczos_and_logged(tiny_fork, tmp_path):
    from PIL import Image

    big = tmp_path / "imgs"
    big.mkdir()
    rgb = np.asarray(Image.open(tiny_fork.images / "sample.png").convert("RGB"))
    Image.fromarray(rgb).resize((48, 40), Image.BILINEAR).save(big / "big.png")
    log = run_reference_device(tiny_fork.builder, tiny_fork.params, big, tmp_path / "out",
                               dump="all")
    assert log["runs"][0]["resized"] is True
    assert any("Lanczos" in w for w in log["warnings"])
    assert any("Lanczos" in w for w in log["runs"][0]["warnings"])
    shapes = json.loads((tmp_path / "out" / "shapes-tiny_fork.json").read_text())
    assert shapes["tiny_fork-__Resize_2__.floats"] == [32, 32, 3, 1]
    raw = np.fromfile(tmp_path / "out" / "tiny_fork-__Input__.floats", "<f4")
    assert raw.size == 48 * 40 * 3
