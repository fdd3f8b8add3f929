"""The converter's outputs stay byte-identical: every file of every zoo network against its
pinned sha256 (see zoo_digests.py for what is pinned and how to regenerate)."""
import os

import pytest
from zoo_digests import REGEN_ENV, convert_network, digest_diff, digest_key, load_digests, \
    normalised_manifest, store_digests

FAST_NETWORKS = ["default", "tiny_yolo"]
SLOW_NETWORKS = ["yolo", "vgg16", "resnet50", "inception_v3", "inception_resnet_v2",
                 "mobilenet", "xception"]


def check_network(network, tmp_path):
    actual = convert_network(network, tmp_path)
    if os.environ.get(REGEN_ENV):
        store_digests(network, actual)
        return
    pinned = load_digests().get(digest_key(), {})
    if network not in pinned:
        pytest.skip(f"no digests recorded for {network} under {digest_key()}; record them "
                    f"with {REGEN_ENV}=1 in an environment whose outputs are known to be right")
    differences = digest_diff(pinned[network], actual)
    assert not differences, (f"{network}: the converter's output changed "
                             f"({len(differences)} files):\n" + "\n".join(differences))


@pytest.mark.parametrize("network", FAST_NETWORKS)
def test_outputs_match_pinned_digests(network, tmp_path):
    check_network(network, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("network", SLOW_NETWORKS)
def test_zoo_outputs_match_pinned_digests(network, tmp_path):
    check_network(network, tmp_path)


def test_manifest_normalisation_blanks_only_the_version_fields():
    text = ('{\n "source": {\n  "model": "keras_net",\n  "keras": "3.15.1",\n'
            '  "tensorflow": "2.21.0",\n  "seed": 0\n },\n "kind": "keras"\n}\n')
    assert normalised_manifest(text) == text.replace('"3.15.1"', '"*"').replace('"2.21.0"', '"*"')


def test_digest_diff_names_each_differing_file():
    lines = digest_diff({"P/a.bin": "1" * 64, "S/B.swift": "2" * 64},
                        {"P/a.bin": "3" * 64, "P/c.bin": "4" * 64})
    assert [line.split()[:2] for line in lines] == [["differs:", "P/a.bin"],
                                                    ["new:", "P/c.bin"], ["missing:", "S/B.swift"]]
