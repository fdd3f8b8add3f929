"""Parse errors name the line, weight-file errors name file/layer/count, and every --fault kind
makes the faulted layer the first deviating tensor."""
import json

import numpy as np
import pytest

from refdev_support import TINY_BUILDER, write_floats
from device_pull.__main__ import main as device_pull_main
from device_pull.reference_device import (ReferenceDevice, ReferenceDeviceError, parse_builder,
                                          parse_builder_source)

SOURCE = TINY_BUILDER.read_text()


def line_of(text, needle):
    return next(i + 1 for i, l in enumerate(text.splitlines()) if needle in l)


# ---------------------------------------------------------------------------------------------
# parse errors


@pytest.mark.parametrize("old,new,pattern", [
    ('let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")',
     'let pool2 = Upsample(size: 2, name: "pool2")', "unknown initializer or function `Upsample`"),
    ('let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")',
     'let pool2 = AveragePooling(kernel: (2, 2), strides: (2, 2), name: "pool2")',
     "AveragePooling has no argument `strides:`"),
    ('let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")',
     'let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), padding: .full, name: "pool2")',
     r"`padding:` must be one of \.same, \.valid"),
    ('let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")',
     'let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2"',
     "Swift syntax error"),
    ('let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")',
     'let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")\nlet zz = undefined_thing',
     "`undefined_thing` is not defined"),
    ('let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")',
     'let pool2 = AveragePooling(kernel: (2, 2), stride: (2, 2), name: "pool2")\nlet n6 = MPSCNNNeuronFancy(device: device)',
     "unknown neuron `MPSCNNNeuronFancy`"),
])
def test_parse_errors_name_the_line(old, new, pattern):
    text = SOURCE.replace(old, new)
    assert text != SOURCE
    with pytest.raises(ReferenceDeviceError) as info:
        parse_builder_source(text, path="Hand.swift")
    msg = str(info.value)
    first_changed = line_of(text, new.splitlines()[-1][:30]) if "syntax" not in pattern else None
    import re

    assert re.search(pattern, msg), msg
    assert msg.startswith("Hand.swift:"), msg
    if first_changed is not None:
        assert msg.startswith(f"Hand.swift:{first_changed}:"), msg


def test_missing_name_and_model_are_errors():
    with pytest.raises(ReferenceDeviceError, match="no `name` property"):
        parse_builder_source(SOURCE.replace('private(set) public var name = "tiny_fork"', ""))
    with pytest.raises(ReferenceDeviceError, match="never assigns `model"):
        parse_builder_source(SOURCE.replace("model = Model(input: input, output: output)", ""))
    with pytest.raises(ReferenceDeviceError, match="ParameterLoaderBundle"):
        parse_builder_source(SOURCE.replace("ParameterLoaderBundle(", "Loader("))


def test_scoping_and_loader_spec():
    prog = parse_builder(TINY_BUILDER)
    assert prog.name == "tiny_fork" and prog.class_name == "TinyForkStyleBuilder"
    assert prog.loader.file_name("conv1", "weights") == "tiny_fork-conv1.weights.bin"
    assert prog.loader.file_name("conv1", "biases") == "tiny_fork-conv1.biases.bin"
    tensors = prog.model.complete_graph()
    # `let conv1 = input_1 --> conv1 --> pool1` inside do {} used the *layer* conv1 on the right
    assert [t.short_id for t in tensors[:7]] == ["__Input__", "__Resize_2__", "rgb2bgr",
                                                 "subtract_mean", "input_scale", "conv1", "pool1"]


# ---------------------------------------------------------------------------------------------
# weight files


def copy_params(tiny_fork, dst):
    dst.mkdir(exist_ok=True)
    for p in tiny_fork.params.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_missing_weight_file(tiny_fork, tmp_path):
    params = copy_params(tiny_fork, tmp_path / "p")
    (params / "tiny_fork-branch_b2.weights.bin").unlink()
    with pytest.raises(ReferenceDeviceError) as info:
        ReferenceDevice(TINY_BUILDER, params)
    msg = str(info.value)
    assert "tiny_fork-branch_b2.weights.bin: missing weights file for Conv layer 'branch_b2'" in msg
    assert f"(line {line_of(SOURCE, 'let branch_b2 =')})" in msg
    assert "expected 288 float32 values" in msg     # 8 in * 3 * 1 * 12 out


def test_short_and_long_weight_files(tiny_fork, tmp_path):
    params = copy_params(tiny_fork, tmp_path / "p")
    b = np.fromfile(params / "tiny_fork-fc.biases.bin", "<f4")
    write_floats(params / "tiny_fork-fc.biases.bin", b[:7])
    with pytest.raises(ReferenceDeviceError, match=r"tiny_fork-fc.biases.bin: biases file for Dense "
                       r"layer 'fc' \(line \d+\) is too short: 28 bytes, expected 10 float32"):
        ReferenceDevice(TINY_BUILDER, params)
    write_floats(params / "tiny_fork-fc.biases.bin", np.concatenate([b, b]))
    dev = ReferenceDevice(TINY_BUILDER, params)
    assert any("holds 20 floats, Forge reads only the first 10" in w for w in dev.warnings)


# ---------------------------------------------------------------------------------------------
# faults


def dumps_in_order(dev, img):
    dumps = dev.forward(img, dump="all")["dumps"]
    order = [dev.file_name(t) for t in dev.tensors]
    return [(name, dumps[name][0]) for name in order if name in dumps]


def first_deviation(clean, faulty):
    for (name, a), (name2, b) in zip(clean, faulty):
        assert name == name2
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=False):
            return name
    return None


@pytest.fixture(scope="module")
def clean_dumps(tiny_fork):
    from PIL import Image

    img = np.asarray(Image.open(tiny_fork.images / "sample.png").convert("RGBA"))
    return img, dumps_in_order(ReferenceDevice(TINY_BUILDER, tiny_fork.params), img)


@pytest.mark.parametrize("fault", [
    "transpose:conv1", "transpose:pw", "transpose:dw", "transpose:fc", "transpose:branch_b2",
    "stride:conv1", "stride:branch_b2", "stride:pool1", "stride:pw", "stride:dw",
    "bias:conv1", "bias:branch_a", "bias:fc",
    "garbage:mixed_up", "garbage:conv1", "garbage:dw",
])
def test_fault_makes_its_layer_the_first_deviation(tiny_fork, clean_dumps, fault):
    img, clean = clean_dumps
    dev = ReferenceDevice(TINY_BUILDER, tiny_fork.params, fault=fault)
    faulty = dumps_in_order(dev, img)
    layer = fault.split(":")[1]
    assert first_deviation(clean, faulty) == f"tiny_fork-{layer}.floats"


def test_fault_errors(tiny_fork):
    with pytest.raises(ReferenceDeviceError, match="no layer named 'nope'"):
        ReferenceDevice(TINY_BUILDER, tiny_fork.params, fault="bias:nope")
    with pytest.raises(ReferenceDeviceError, match="KIND is one of|KIND one of"):
        ReferenceDevice(TINY_BUILDER, tiny_fork.params, fault="flip:conv1")
    with pytest.raises(ReferenceDeviceError, match="has no biases"):
        ReferenceDevice(TINY_BUILDER, tiny_fork.params, fault="bias:dw")
    with pytest.raises(ReferenceDeviceError, match="has no kernel/stride"):
        ReferenceDevice(TINY_BUILDER, tiny_fork.params, fault="stride:fc")
    with pytest.raises(ReferenceDeviceError, match="has no weights"):
        ReferenceDevice(TINY_BUILDER, tiny_fork.params, fault="garbage:pool1")


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_emulate(tiny_fork, tmp_path, capsys):
    rc = device_pull_main(["emulate", str(TINY_BUILDER), "--param_dir", str(tiny_fork.params),
                           "--images", str(tiny_fork.images / "sample.png"),
                           "--out", str(tmp_path), "--fault", "bias:fc", "--dump", "output"])
    assert rc == 0
    log = json.loads((tmp_path / "run-tiny_fork.json").read_text())   # one image: flat
    assert log["fault"] == "bias:fc" and log["image"] == "sample.png"
    assert (tmp_path / "tiny_fork-__Softmax_25__.floats").exists()
    out = capsys.readouterr().out
    assert "reference device" in out and f"wrote one run in {tmp_path}" in out


def test_cli_error_exit_code(tiny_fork, tmp_path, capsys):
    rc = device_pull_main(["emulate", str(TINY_BUILDER), "--param_dir", str(tmp_path),
                           "--images", str(tiny_fork.images), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "missing weights file" in capsys.readouterr().err
