import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

REPO = os.path.dirname(os.path.dirname(HERE))
CFG_DIR = os.path.join(REPO, "core", "data", "darknet-cfg")


@pytest.fixture(scope="session")
def cfg_dir():
    return CFG_DIR


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory):
    """Seeded weights files, written once per session: cache(cfg_name, seed, version)."""
    from core.darknet import write_random_weights
    folder = tmp_path_factory.mktemp("weights")
    made = {}

    def get(cfg_name, seed=0, header_version=(0, 2, 0)):
        key = (cfg_name, seed, tuple(header_version))
        if key not in made:
            path = folder / f"{cfg_name}-{seed}-{'.'.join(map(str, header_version))}.weights"
            write_random_weights(os.path.join(CFG_DIR, cfg_name + ".cfg"), path, seed=seed,
                                 header_version=header_version)
            made[key] = str(path)
        return made[key]
    return get
