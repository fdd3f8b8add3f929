"""Each optimisation pass alone, on small hand-built IR graphs."""
import numpy as np
import pytest

from core import passes
from core.errors import ConversionError
from core.forge_ops import op_for
from core.ir import Graph, Node, keras_layer_source

RNG = np.random.default_rng(0)


def inp(h=8, w=8, c=4):
    return Node("x", "Input", [], {"height": h, "width": w, "channels": c}, keras_layers=["x"],
                golden_source=keras_layer_source("x"))


def conv(name, src, cin=4, cout=4, k=3, stride=1, padding="same", **attrs):
    return Node(name, "Convolution", [src], dict(kernel=(k, k), stride=(stride, stride),
                                                 padding=padding, use_bias=True, **attrs),
                weights={"kernel": RNG.normal(size=(k, k, cin, cout)).astype(np.float32),
                         "bias": RNG.normal(size=cout).astype(np.float32)},
                keras_layers=[name], golden_source=keras_layer_source(name))


def bn(name, src, c=4):
    return Node(name, "BatchNorm", [src], {"epsilon": 1e-3}, weights={
        "gamma": RNG.uniform(0.5, 2, c), "beta": RNG.normal(size=c), "mean": RNG.normal(size=c),
        "variance": RNG.uniform(0.5, 2, c)}, keras_layers=[name], golden_source=keras_layer_source(name))


def act(name, src, kind="relu"):
    return Node(name, "Activation", [src], {"neuron": {"type": kind, "a": 0.0, "b": 6.0}},
                keras_layers=[name], golden_source=keras_layer_source(name))


def graph(*nodes, output=None):
    return Graph("net", list(nodes), input="x", output=output or nodes[-1].name)


def conv_forward(node, x):
    """Reference 'valid'-free 1x1-centred evaluation: kernel applied at the centre pixel only."""
    k = node.weights["kernel"]
    return x @ k[k.shape[0] // 2, k.shape[1] // 2] + node.weights["bias"]


def test_fold_batchnorm_keeps_conv_bias_and_matches_numerics():
    c, b = conv("c", "x"), bn("bn", "c")
    original_kernel, original_bias = c.weights["kernel"].copy(), c.weights["bias"].copy()
    g = passes.fold_batchnorm(graph(inp(), c, b))
    assert [n.op for n in g.nodes] == ["Input", "Convolution"]
    x = RNG.normal(size=(5, 4))
    pre = x @ original_kernel[1, 1] + original_bias
    w = b.weights
    expected = (pre - w["mean"]) / np.sqrt(w["variance"] + 1e-3) * w["gamma"] + w["beta"]
    np.testing.assert_allclose(conv_forward(g.node("c"), x), expected, rtol=1e-5, atol=1e-5)
    assert g.output == "c" and g.node("c").golden_source["layer"] == "bn"


def test_fold_batchnorm_skips_conv_with_two_readers():
    g = passes.fold_batchnorm(graph(inp(), conv("c", "x"), bn("bn", "c"), act("r", "c"),
                                    output="bn"))
    assert "BatchNorm" in [n.op for n in g.nodes]


def test_batchnorm_to_depthwise_is_a_per_channel_affine():
    b = bn("bn", "x")
    w = dict(b.weights)
    g = passes.batchnorm_to_depthwise(graph(inp(), b))
    node = g.node("bn")
    assert node.op == "DepthwiseConvolution" and node.weights["kernel"].shape == (1, 1, 4, 1)
    x = RNG.normal(size=(3, 4))
    expected = (x - w["mean"]) / np.sqrt(w["variance"] + 1e-3) * w["gamma"] + w["beta"]
    np.testing.assert_allclose(x * node.weights["kernel"][0, 0, :, 0] + node.weights["bias"],
                               expected, rtol=1e-5)


def test_fuse_activations_but_never_relun():
    g = passes.fuse_activations(graph(inp(), conv("c", "x"), act("r", "c")))
    assert [n.name for n in g.nodes] == ["x", "c"] and g.node("c").attrs["neuron"]["type"] == "relu"
    g = passes.fuse_activations(graph(inp(), conv("c", "x"), act("r6", "c", "relun")))
    assert [n.name for n in g.nodes] == ["x", "c", "r6"]


def test_drop_identity_refuses_reshape_of_a_feature_map_into_non_dense():
    ident = Node("flat", "Identity", ["c"], {"keras_class": "Flatten"}, keras_layers=["flat"])
    g = graph(inp(), conv("c", "x"), ident, act("r", "flat"))
    with pytest.raises(ConversionError, match="flat.*Flatten.*Dense"):
        passes.drop_identity(g)


def test_drop_identity_removes_dropout():
    ident = Node("drop", "Identity", ["c"], {"keras_class": "Dropout"}, keras_layers=["drop"])
    g = passes.drop_identity(graph(inp(), conv("c", "x"), ident, act("r", "drop")))
    assert g.node("r").inputs == ["c"]


def test_fold_zero_padding_only_when_windows_coincide():
    pad = Node("p", "ZeroPadding", ["x"], {"tblr": (1, 1, 1, 1)}, keras_layers=["p"])
    g = passes.fold_zero_padding(graph(inp(), pad, conv("c", "p", padding="valid")))
    assert [n.op for n in g.nodes] == ["Input", "Convolution"]
    assert g.node("c").attrs["padding"] == "same"
    pad = Node("p", "ZeroPadding", ["x"], {"tblr": (3, 3, 3, 3)}, keras_layers=["p"])
    g = passes.fold_zero_padding(graph(inp(), pad, conv("c", "p", k=7, stride=2, padding="valid")))
    assert "ZeroPadding" in [n.op for n in g.nodes]  # Forge .same would start at -2, not -3


def depthwise(name, src, c=4, k=3, stride=2, padding="valid"):
    return Node(name, "DepthwiseConvolution", [src],
                dict(kernel=(k, k), stride=(stride, stride), padding=padding, use_bias=True),
                weights={"kernel": RNG.normal(size=(k, k, c, 1)).astype(np.float32),
                         "bias": RNG.normal(size=c).astype(np.float32)},
                keras_layers=[name], golden_source=keras_layer_source(name))


def test_subsample_strided_depthwise_only_after_a_centred_padding():
    pad = Node("p", "ZeroPadding", ["x"], {"tblr": (1, 1, 1, 1)}, keras_layers=["p"])
    g = passes.subsample_strided_depthwise(graph(inp(), pad, depthwise("d", "p")))
    assert [(n.name, n.op) for n in g.nodes] == [("x", "Input"), ("d", "DepthwiseConvolution"),
                                                 ("d_subsample", "MaxPooling")]
    assert g.node("d").attrs["stride"] == (1, 1) and g.node("d").attrs["padding"] == "same"
    assert g.node("d").keras_layers == ["p", "d"] and g.node("d").golden_source is None
    assert g.node("d_subsample").attrs == {"kernel": (1, 1), "stride": (2, 2),
                                           "padding": "valid"}
    assert g.output == "d_subsample" and g.node("d_subsample").golden_source["layer"] == "d"
    # padded on one side only (TensorFlow's 'same' for an even input): not centred, left alone
    pad = Node("p", "ZeroPadding", ["x"], {"tblr": (0, 1, 0, 1)}, keras_layers=["p"])
    g = passes.subsample_strided_depthwise(graph(inp(), pad, depthwise("d", "p")))
    assert [n.op for n in g.nodes] == ["Input", "ZeroPadding", "DepthwiseConvolution"]


@pytest.mark.parametrize("size,kernel,stride", [(8, 3, 1), (8, 3, 2), (7, 3, 2), (8, 1, 2),
                                                (9, 5, 2), (224, 7, 2)])
def test_forge_same_conv_window_matches_tensorflow_for_odd_kernels(size, kernel, stride):
    start = op_for("Convolution").first_window_start(size, kernel, stride, "same")
    assert start == -passes._tf_same_pad(size, kernel, stride)[0]


def test_forge_same_conv_window_is_off_by_one_for_even_kernels():
    assert op_for("Convolution").first_window_start(8, 2, 1, "same") == -1
    assert passes._tf_same_pad(8, 2, 1)[0] == 0


def test_legalise_padding_refuses_pooling_placed_differently():
    pool = Node("mp", "MaxPooling", ["x"], {"kernel": (2, 2), "stride": (1, 1),
                                            "padding": "same"}, keras_layers=["mp"])
    passes.legalise_padding(graph(inp(h=13, w=13), pool))  # darknet's 2/1 pool: same placement
    pool.attrs.update(kernel=(1, 1), stride=(2, 2))  # Forge starts this window at +1, TF at 0
    with pytest.raises(ConversionError, match="mp.*places a 'same' MaxPooling"):
        passes.legalise_padding(graph(inp(h=8, w=8), pool))


def test_enforce_merge_rules_copies_concat_inputs_with_other_readers():
    a, b = conv("a", "x"), conv("b", "x")
    cat = Node("cat", "Concatenate", ["a", "b"], keras_layers=["cat"])
    g = passes.enforce_merge_rules(graph(inp(), a, b, cat, act("r", "a"), output="cat"))
    assert g.node("cat").inputs == ["a_copy", "b"]
    assert g.node("a_copy").attrs["neuron"] == {"type": "linear", "a": 1.0, "b": 0.0}


def test_enforce_merge_rules_copies_depthwise_written_collect_inputs():
    dw = Node("dw", "DepthwiseConvolution", ["x"], {"kernel": (3, 3), "stride": (1, 1),
                                                    "padding": "same"},
              weights={"kernel": np.ones((3, 3, 4, 1), np.float32)}, keras_layers=["dw"])
    add = Node("add", "CollectMerge", ["x_conv", "dw"], {"operation": "Add"}, keras_layers=["add"])
    g = passes.enforce_merge_rules(graph(inp(), conv("x_conv", "x"), dw, add))
    assert g.node("add").inputs == ["x_conv", "dw_copy"]


def test_flatten_nested_concats():
    a, b, c = conv("a", "x"), conv("b", "x"), conv("c", "x")
    inner = Node("inner", "Concatenate", ["b", "c"])
    outer = Node("outer", "Concatenate", ["a", "inner"])
    g = passes.flatten_nested_concats(graph(inp(), a, b, c, inner, outer))
    assert g.node("outer").inputs == ["a", "b", "c"] and "inner" not in [n.name for n in g.nodes]


def test_insert_preprocessing_caffe_means_follow_the_channel_swap():
    g = graph(inp(c=3), conv("c", "x", cin=3))
    g.meta["family"] = "caffe"
    g = passes.insert_preprocessing(g)
    assert [n.name for n in g.nodes] == ["x", "resize", "rgb2bgr", "subtract_mean", "c"]
    args = g.node("subtract_mean").attrs["args"]
    assert (args["red"], args["green"], args["blue"]) == (103.939, 116.779, 123.68)
    assert g.node("x").golden_source == {"kind": "input_texture"}
    assert g.meta["preprocessing"]["steps"][1]["mean"] == [103.939, 116.779, 123.68]


@pytest.mark.parametrize("raw", ["../../etc/passwd", "a b/c", "class", "1st", "ümlaut",
                                 "x" * 300, "input", "___", ""])
def test_forge_identifier_is_a_safe_swift_name_and_file_part(raw):
    name = passes.forge_identifier(raw)
    assert name.isidentifier() and name.isascii() and "/" not in name and ".." not in name
    assert name not in passes.SWIFT_RESERVED and len(name) <= passes.MAX_NAME


def test_assign_forge_names_keeps_names_unique():
    a, b = conv("a/b", "x"), conv("a_b", "a/b")
    g = passes.assign_forge_names(graph(inp(), a, b))
    assert [n.name for n in g.nodes] == ["x", "a_b", "a_b_1"] and g.node("a_b_1").inputs == ["a_b"]
