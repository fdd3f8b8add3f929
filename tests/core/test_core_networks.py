"""The eight networks of the original tool convert end to end (slow: whole models)."""

import numpy as np
import pytest
from test_core_swift import check_builder

from core.cli import main
from core.manifest import load_manifest
from core.zoo import ZOO

ORIGINAL = ("TINY_YOLO", "YOLO", "VGG16", "RESNET_50", "INCEPTION_V3", "INCEPTION_RESNET_V2",
            "MOBILE_NET", "XCEPTION", "DEFAULT")
NETWORKS = [entry.constant for entry in ZOO if entry.constant in ORIGINAL]


@pytest.mark.slow
@pytest.mark.parametrize("model", NETWORKS)
def test_zoo_network_converts(tmp_path, model, capsys):
    args = [model, "--weights", "random", "--seed", "0", "--param_dir", str(tmp_path / "P"),
            "--src_out_dir", str(tmp_path / "S"), "--model_dir", str(tmp_path / "M")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "folded model matches the original" in out
    manifest_path = next((tmp_path / "P").glob("*.manifest.json"))
    manifest = load_manifest(manifest_path)
    check = manifest.source.fold_check
    assert check.max_relative_error < 1e-3
    # the weight files hold exactly what the folded Keras model holds
    totals = manifest.totals
    assert totals.parameters - totals.converter_parameters == check.keras_params_folded
    for entry in manifest.weights:
        path = tmp_path / "P" / entry.file
        assert path.stat().st_size == 4 * entry.count
    check_builder((tmp_path / "S" / f"{manifest.builder.class_name}.swift").read_text())
    names = [t.name for t in manifest.tensors]
    assert len(names) == len(set(names)) == manifest.totals.tensors
    assert not list(tmp_path.rglob("*.part*")), "no temporary files may be left behind"


@pytest.mark.slow
def test_darknet_parameter_count_before_folding_equals_cfg(tmp_path):
    """tiny-yolo-voc: the Keras model before folding holds exactly the cfg's float count."""
    from core.yolo_models import zoo_yolo_model
    from core.zoo import zoo_entry
    model, _ = zoo_yolo_model(zoo_entry("TINY_YOLO"), "random", 0, tmp_path)
    assert model.count_params() == 15_867_885
    assert np.isfinite(model.get_layer("bn_0").get_weights()[0]).all()
