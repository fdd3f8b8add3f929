"""Pictures: error by depth, feature-map grids (tiling orientation), the featuremaps command."""
import json

import numpy as np
import pytest

from reports_helpers import assert_picture, converted_manifest, make_results

from core.manifest import load_manifest
from stores.store import StoreWriter
from reports.__main__ import main
from reports.plots import error_by_depth, featuremap_grid, tile_channels


def test_error_by_depth(tmp_path):
    data = make_results(n=40, fail_at=30, problem_at=12)
    data.tensors[3].metrics.rel_error = 0.0          # drawn at the floor, not dropped
    out = error_by_depth(data, tmp_path / "e.png")
    assert_picture(out, 800, 500)
    empty = make_results(n=0)
    assert error_by_depth(empty, tmp_path / "empty.png").is_file()


def test_tiles_keep_orientation_of_non_square_maps():
    h, w, c = 2, 5, 3
    hwc = np.zeros((h, w, c), np.float32)
    hwc[0, 4, 1] = 7.0                          # channel 1, row 0, column 4
    grid = tile_channels(hwc)
    # 2×2 grid of 2×5 tiles with a 1-pixel gap
    assert grid.shape == (2 * (h + 1) - 1, 2 * (w + 1) - 1)
    tile1 = grid[0:h, (w + 1):(w + 1) + w]
    assert tile1.shape == (h, w) and tile1[0, 4] == 7.0
    assert np.isnan(grid[h, 0])                 # gap
    assert np.isnan(grid[h + 1:, w + 1:]).all()  # the unused 4th tile is padding
    vec = tile_channels(np.arange(10, dtype=np.float32))
    assert vec.shape == (3, 4) and vec[0, 3] == 3.0


def test_featuremap_grid(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 20, 10)).astype(np.float32)
    b = a + rng.normal(scale=0.05, size=a.shape).astype(np.float32)
    assert_picture(featuremap_grid(a, b, tmp_path / "g.png", title="conv1"), 900, 250)
    with pytest.raises(ValueError, match="not the same tensor"):
        featuremap_grid(a, b[:, :, :5], tmp_path / "x.png")


def test_featuremaps_command_from_stores(tmp_path):
    manifest = load_manifest(converted_manifest(tmp_path, "tiny"))
    rng = np.random.default_rng(1)
    golden = rng.normal(size=(6, 10, 8)).astype(np.float32)
    with StoreWriter(tmp_path / "golden.h5", "golden", manifest) as w:
        w.write("dog", "conv1", golden)
        w.write("cat", "conv1", golden * 0)
    with StoreWriter(tmp_path / "device.h5", "device", manifest, device="iPhone 7") as w:
        w.write("dog", "conv1", golden + 0.01)
        w.missing("dog", "conv2", "tiny-conv2.floats not found")
        w.write("cat", "conv1", golden)
    out = tmp_path / "fm.png"
    assert main(["featuremaps", str(tmp_path / "golden.h5"), str(tmp_path / "device.h5"),
                 "--tensor", "conv1", "--out", str(out)]) == 0
    assert_picture(out, 900, 200)
    assert main(["featuremaps", str(tmp_path / "golden.h5"), str(tmp_path / "device.h5"),
                 "--tensor", "conv1", "--image", "cat", "--out", str(tmp_path / "cat.png")]) == 0
    assert main(["featuremaps", str(tmp_path / "golden.h5"), str(tmp_path / "device.h5"),
                 "--tensor", "nope", "--out", str(tmp_path / "n.png")]) == 2
    assert main(["featuremaps", str(tmp_path / "device.h5"), str(tmp_path / "device.h5"),
                 "--tensor", "conv2", "--out", str(tmp_path / "m.png")]) == 2
    assert not (tmp_path / "n.png").exists() and not (tmp_path / "m.png").exists()


def test_featuremaps_command_from_dump_folders(tmp_path, capsys):
    """Keras side shapes.json [H, W, C, 1] against Forge shapes-<model>.json [W, H, C, N]."""
    h, w, c = 4, 9, 5
    data = np.arange(h * w * c, dtype=np.float32).reshape(h, w, c)
    keras_dir, forge_dir = tmp_path / "keras", tmp_path / "forge"
    keras_dir.mkdir()
    forge_dir.mkdir()
    name = "tiny-conv1.floats"
    data.tofile(keras_dir / name)
    (data + 1).tofile(forge_dir / name)
    (keras_dir / "shapes.json").write_text(json.dumps({name: [h, w, c, 1]}))
    (forge_dir / "shapes-tiny.json").write_text(json.dumps({name: [w, h, c, 1]}))
    from reports.dumps import load_tensor

    a, _ = load_tensor(keras_dir, "conv1")
    b, _ = load_tensor(forge_dir / name, "conv1")
    assert a.shape == b.shape == (h, w, c)
    np.testing.assert_array_equal(a, data)
    out = tmp_path / "fm.png"
    assert main(["featuremaps", str(keras_dir), str(forge_dir), "--tensor", "conv1",
                 "--out", str(out)]) == 0
    assert_picture(out, 900, 150)


def test_picture_check_rejects_blank(tmp_path):
    from PIL import Image

    Image.new("RGB", (900, 600), "white").save(tmp_path / "blank.png")
    with pytest.raises(AssertionError, match="blank"):
        assert_picture(tmp_path / "blank.png")
