"""The cfg reader: Darknet's parsing rules, defaults, and errors that name the line."""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.darknet import CfgError, DarknetError, build_plan, parse_cfg, parse_cfg_text

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"


def plan_of(text, **kw):
    return build_plan(parse_cfg_text(text, "test.cfg"), **kw)


def test_whitespace_comments_and_aliases():
    text = ("# comment\n[net]\n wid th = 3 2\nheight=32\t\n; other comment\nchannels=3\n\n"
            "[conv]\nfilters = 4\nsize=3\npad=1\nactivation = leaky\n"
            "[max]\nsize=2\nstride=2\n[network_is_not_here]\n")
    with pytest.raises(CfgError, match=r"test.cfg:16: unknown section type \[network_is_not_here\]"):
        parse_cfg_text(text, "test.cfg")
    cfg = parse_cfg_text(text.rsplit("[network", 1)[0], "test.cfg")
    assert cfg.net.get_int("width") == 32  # whitespace inside the line is removed
    assert [s.kind for s in cfg.layers] == ["convolutional", "maxpool"]
    assert [s.index for s in cfg.layers] == [0, 1]
    plan = build_plan(cfg)
    assert plan.layers[1].out_shape == (16, 16, 4)


def test_network_alias_and_first_key_wins():
    cfg = parse_cfg_text("[network]\nwidth=8\nwidth=16\nheight=8\nchannels=1\n[soft]\n")
    assert cfg.net.get_int("width") == 8
    assert cfg.layers[0].kind == "softmax"


def test_darknet_defaults_for_missing_keys():
    plan = plan_of(NET + "[convolutional]\n[maxpool]\nstride=2\n[upsample]\n")
    conv, pool, up = plan.layers
    assert conv.attrs == dict(filters=1, size=1, stride=1, padding=0, groups=1,
                              activation="logistic", batch_normalize=False)
    assert conv.weights == [("biases", 1), ("weights", 3)]
    assert pool.attrs == dict(size=2, stride=2, padding=1)
    assert up.attrs == dict(stride=2, scale=1.0)


def test_batch_normalize_is_a_value_not_presence():
    off = plan_of(NET + "[convolutional]\nbatch_normalize=0\nfilters=2\n").layers[0]
    on = plan_of(NET + "[convolutional]\nbatch_normalize=1\nfilters=2\n").layers[0]
    assert not off.attrs["batch_normalize"] and off.n_floats == 2 + 6
    assert on.attrs["batch_normalize"] and on.n_floats == 8 + 6


def test_route_negative_and_absolute_indices():
    text = NET + ("[convolutional]\nfilters=4\n[convolutional]\nfilters=6\n"
                  "[route]\nlayers=-1, 0\n[route]\nlayers=1\n[route]\nlayers=-3,0\ngroups=2\ngroup_id=1\n")
    plan = plan_of(text)
    assert plan.layers[2].inputs == [1, 0] and plan.layers[2].out_shape == (32, 32, 10)
    assert plan.layers[3].inputs == [1]
    assert plan.layers[4].inputs == [1, 0] and plan.layers[4].out_shape == (32, 32, 5)


def test_real_cfgs_float_counts(cfg_dir):
    expected = {"yolov2-tiny-voc": 15867885, "yolov2": 50983561, "yolov2-voc": 50676061,
                "yolov2-tiny": 11237145, "darknet19_448": 20856776, "yolo9000": 48807501,
                "yolov3": 62001757}
    for name, floats in expected.items():
        assert build_plan(os.path.join(cfg_dir, name + ".cfg")).n_floats == floats, name


@pytest.mark.parametrize("text, pattern", [
    ("[convolutional]\nfilters=2\n", r"test.cfg:1: the first section is \[convolutional\] but Darknet requires \[net\]"),
    ("width=3\n[net]\n", r"test.cfg:1: 'key=value' before the first section"),
    ("", r"no sections found"),
    (NET + "[convolutional]\nfilters=two\n", r"test.cfg:6: \[convolutional\] \(layer 0\): 'filters=two' is not an integer"),
    (NET + "[convolutional]\nfilters=0\n", r"test.cfg:6: .*'filters=0' must be at least 1"),
    (NET + "[convolutional]\nactivation=swish\n", r"test.cfg:6: .*activation 'swish' is not supported"),
    (NET + "[convolutional]\nactivation=sparkly\n", r"test.cfg:6: .*unknown activation 'sparkly'"),
    (NET + "[bogus]\n", r"test.cfg:5: unknown section type \[bogus\]"),
    (NET + "[lstm]\n", r"test.cfg:5: \[lstm\] \(layer 0\): section \[lstm\] is valid Darknet but not supported"),
    (NET + "[convolutional]\nfilters\n", r"test.cfg:6: cannot parse 'filters'"),
    (NET + "[convolutional\n", r"test.cfg:5: malformed section header"),
    (NET + "[route]\n", r"test.cfg:5: \[route\] \(layer 0\): required key 'layers' is missing"),
    (NET + "[convolutional]\n[route]\nlayers=3\n", r"test.cfg:7: \[route\] \(layer 1\): 'layers' refers to layer 3"),
    (NET + "[shortcut]\nfrom=-1\n", r"test.cfg:6: .*'from' refers to layer -1 -> index -1"),
    (NET + "[convolutional]\nfilters=30\n[region]\nclasses=20\nnum=5\n", r"test.cfg:7: \[region\] \(layer 1\): the layer before has 30 channels but this head needs 125"),
    (NET + "[convolutional]\nfilters=18\n[yolo]\nmask=0,7\nnum=3\nclasses=4\n", r"test.cfg:8: .*'mask' entries \[7\]"),
    (NET + "[convolutional]\nfilters=255\n[yolo]\nanchors=1,2,3\nnum=3\n", r"test.cfg:8: .*'anchors' has 3 numbers"),
    ("[net]\nwidth=32\nheight=32\n[convolutional]\n", r"test.cfg:1: \[net\]: width, height and channels must all be set"),
    (NET + "[convolutional]\nsize=9\nstride=4\n[convolutional]\nsize=9\n", r"test.cfg:8: .*smaller than the 9x9 kernel"),
    (NET + "[reorg]\nstride=2\n", r"test.cfg:5: .*channels 3 not divisible"),
    (NET + "[convolutional]\nflipped=1\n", r"test.cfg:6: .*'flipped=1' changes the weights layout"),
    (NET + "[softmax]\n", r"test.cfg:5: .*softmax over a 32x32 feature map"),
    (NET + "[net]\n", r"test.cfg:5: a second \[net\] section"),
    (NET + "[convolutional]\nfilters=4\n[maxpool]\nstride=2\n[route]\nlayers=-1,-2\n", r"test.cfg:10: .*Darknet needs equal width and height"),
])
def test_malformed_cfgs_name_the_line(text, pattern):
    with pytest.raises(CfgError, match=pattern):
        plan_of(text)


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(CfgError, match="cannot read the cfg file"):
        parse_cfg(tmp_path / "nope.cfg")
    binary = tmp_path / "x.cfg"
    binary.write_bytes(b"\x00\x01\x02\x03" * 10)
    with pytest.raises(CfgError, match="NUL byte"):
        parse_cfg(binary)


def test_errors_are_value_errors():
    assert issubclass(CfgError, DarknetError) and issubclass(DarknetError, ValueError)


# ------------------------------------------------------------------------------------- fuzz
_TOKENS = ["[net]", "[network]", "[convolutional]", "[conv]", "[maxpool]", "[max]", "[avgpool]",
           "[route]", "[reorg]", "[shortcut]", "[upsample]", "[region]", "[yolo]", "[connected]",
           "[dropout]", "[softmax]", "[cost]", "[lstm]", "[bogus]", "[", "]", "=", ",", "#", ";",
           "width", "height", "channels", "filters", "size", "stride", "pad", "padding", "groups",
           "group_id", "activation", "batch_normalize", "layers", "from", "anchors", "mask", "num",
           "classes", "coords", "softmax", "output", "scale", "alpha", "temperature", "leaky",
           "linear", "mish", "relu", "logistic", "swish", "0", "1", "2", "3", "-1", "-4", "13",
           "416", "125", "1e9", "nan", "0.5", "-", " ", "\t", "\n", "\n", "\n", "\r\n", "\x00", "é"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=80))
def test_fuzz_tokens_only_darknet_errors(tokens):
    text = "".join(tokens)
    try:
        plan_of(text)
    except DarknetError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_fuzz_text_only_darknet_errors(text):
    try:
        plan_of(text)
    except DarknetError:
        pass


def _real_lines():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "core", "data", "darknet-cfg", "yolov3-tiny.cfg")
    return open(path, encoding="utf-8").read().splitlines()


_LINES = _real_lines()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_LINES) - 1), st.sampled_from(["drop", "dup", "mutate"]),
                          st.text(max_size=6)), max_size=6),
       st.one_of(st.none(), st.tuples(st.integers(8, 700), st.integers(8, 700))))
def test_fuzz_mutated_real_cfg(edits, size):
    lines = list(_LINES)
    for idx, op, junk in edits:
        idx %= len(lines)
        if op == "drop":
            del lines[idx]
        elif op == "dup":
            lines.insert(idx, lines[idx])
        else:
            lines[idx] = lines[idx][: len(lines[idx]) // 2] + junk
        if not lines:
            lines = [""]
    try:
        plan_of("\n".join(lines), input_size=size)
    except DarknetError:
        pass
