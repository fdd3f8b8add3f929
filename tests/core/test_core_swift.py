"""The generated Swift: parses cleanly, uses the fork's labels in order, is byte-stable."""
import re

import tree_sitter_swift
from core_helpers import small_model
from tree_sitter import Language, Parser

from core.kerasenv import keras

L = keras.layers

# The fork's initialisers, labels in declaration order, written out here from the tognos/Forge
# sources (Forge/Forge/Layers.swift, Tensor.swift) independently of the registry.
DECLARED_LABELS = {
    "Convolution": ["kernel", "channels", "stride", "padding", "activation", "useBias", "name"],
    "PointwiseConvolution": ["channels", "stride", "activation", "useBias", "name"],
    "DepthwiseConvolution": ["kernel", "channelMultiplier", "stride", "activation", "useBias",
                             "name"],
    "Dense": ["neurons", "activation", "useBias", "name"],
    "MaxPooling": ["kernel", "stride", "padding", "edgeMode", "name"],
    "AveragePooling": ["kernel", "stride", "padding", "edgeMode", "name"],
    "ZeroPadding": ["tblr_padding", "padValue", "name"],
    "Resize": ["width", "height", "name"],
    "Custom": ["", "width", "height", "channels", "name"],
    "Activation": ["", "name"],
    "GlobalAveragePooling": ["name", "useBias"],
    "Softmax": ["name"],
    "Concatenate": ["", "name"],
    "Collect": ["", "name"],
}
PARSER = Parser(Language(tree_sitter_swift.language()))


def syntax_errors(source: str) -> list:
    errors = []

    def walk(node):
        if node.type == "ERROR" or node.is_missing:
            errors.append((node.start_point, node.text[:60]))
        for child in node.children:
            walk(child)
    walk(PARSER.parse(source.encode()).root_node)
    return errors


def constructor_labels(source: str) -> list:
    """(class, [labels]) of every Forge constructor call, from the tree-sitter parse."""
    calls = []

    def walk(node):
        if node.type == "call_expression" and node.children[0].type == "simple_identifier":
            cls = node.children[0].text.decode()
            if cls in DECLARED_LABELS:
                args = [c for c in node.children[1].children[0].children
                        if c.type == "value_argument"]
                labels = []
                for arg in args:
                    label = [c for c in arg.children if c.type == "value_argument_label"]
                    labels.append(label[0].text.decode() if label else "")
                calls.append((cls, labels))
        for child in node.children:
            walk(child)
    walk(PARSER.parse(source.encode()).root_node)
    return calls


def check_builder(source: str):
    assert syntax_errors(source) == []
    calls = constructor_labels(source)
    assert calls, "no Forge constructor found"
    for cls, labels in calls:
        declared = DECLARED_LABELS[cls]
        positions = [declared.index(label) for label in labels]
        assert positions == sorted(positions), f"{cls} labels {labels} out of declared order"
    assert re.search(r"open class \w+Builder : NetworkBuilder", source)
    assert "import MetalPerformanceShaders" in source


def mixed_model():
    def build(x):
        a = L.Conv2D(8, 3, padding="same", activation="relu", use_bias=False, name="a")(x)
        b = L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", name="b")(a)
        c = L.SeparableConv2D(8, 3, padding="same", name="c")(b)
        d = L.Concatenate(name="cat")([c, L.Conv2D(4, 1, name="one")(b)])
        d = L.MaxPooling2D(2, name="pool")(L.BatchNormalization(name="bn")(d))
        e = L.Add(name="add")([d, L.Conv2D(12, 1, name="res")(d)])
        f = L.Dense(5, activation="softmax", name="fc")(L.Flatten()(e))
        return f
    return small_model(build)


def test_generated_swift_parses_and_uses_the_forks_labels_in_order(converted):
    result = converted(mixed_model(), family="tf")
    check_builder(result.builder_path.read_text())


def test_generated_swift_is_byte_identical_for_the_same_model(tmp_path):
    from core.convert import convert
    model = mixed_model()
    texts = []
    for run in ("one", "two"):
        result = convert(model, name="net", family="tf", param_dir=tmp_path / run / "P",
                         src_out_dir=tmp_path / run / "S")
        texts.append(result.builder_path.read_bytes())
        weights = sorted((tmp_path / run / "P").glob("*.bin"))
        texts.append(b"".join(p.read_bytes() for p in weights))
    assert texts[0] == texts[2] and texts[1] == texts[3]


def test_custom_kernel_swift_parses(converted):
    from core.forge_ops import custom_kernels
    project_kernels = [kernel for kernel in custom_kernels() if not kernel.forge_builtin]
    assert project_kernels
    for kernel in project_kernels:
        assert syntax_errors(kernel.swift_source) == []


def test_syntax_checker_catches_broken_swift():
    assert syntax_errors("let x = Convolution(kernel: (3, 3), channels: ") != []


def test_use_bias_false_with_activation_keeps_declared_order(converted):
    m = small_model(lambda x: L.Conv2D(4, 3, use_bias=False, activation="relu", name="c")(x))
    source = converted(m).builder_path.read_text()
    assert 'activation: neuron_relu_0, useBias: false, name: "c"' in source
