"""Root pytest configuration: the options of the validation suite (``pytest validation ...``).

They are registered here, at the root, so pytest knows them from any directory and with any
test path; every option has a default, so the unit tests under ``tests/`` (plain ``pytest``)
never need them.  The suite itself lives in ``validation/`` (see validation/README.md).
"""
from core.preprocessing import FAMILIES


def pytest_addoption(parser):
    group = parser.getgroup("keras2metal validation", "validation suite (pytest validation ...)")
    group.addoption("--model", default="default", metavar="NAME|PATH",
                    help="zoo name (default, resnet50, RESNET_50, ...) or a .keras/.h5 model file "
                         "(default: the embedded shape classifier)")
    group.addoption("--weights", default=None, metavar="random|imagenet|trained|file|PATH",
                    help="as for keras2metal; default: trained for the embedded model, random "
                         "for zoo models, the file's own weights for model files")
    group.addoption("--seed", type=int, default=0, help="seed of --weights random (default 0)")
    group.addoption("--preprocessing", default=None, choices=list(FAMILIES), metavar="FAMILY",
                    help="input preprocessing of a model file, as given to keras2metal "
                         f"({', '.join(FAMILIES)}; zoo models know their own; default none): the "
                         "suite converts with it, so it must match the conversion on the phone")
    group.addoption("--device-dump", default=None, metavar="DIR",
                    help="dump folder copied off the phone; without it the reference device runs "
                         "the converted network")
    group.addoption("--fault", default=None, metavar="KIND:LAYER",
                    help="reference device only: inject a conversion fault into one layer "
                         "(transpose, stride, bias, garbage, scale, shift) to see the suite catch it")
    group.addoption("--images", nargs="+", default=None, metavar="DIR|FILES",
                    help="images to run: folders (read recursively) and/or files (default: the "
                         "model's built-in sample images)")
    group.addoption("--labels", default=None, metavar="FILE|folders",
                    help="classes of the images, for accuracy: JSON {image: class}, an "
                         "'image,label' CSV (also Kaggle's LOC_val_solution.csv), '<image> "
                         "<label>' lines, an ImageNet synset list (labels from the class "
                         "folders), or 'folders' (folder name = class); a label is an index, a "
                         "class name or a WordNet id")
    group.addoption("--limit", type=int, default=None, metavar="N",
                    help="validate only the first N images (sorted by name)")
    group.addoption("--sample", type=int, default=None, metavar="N",
                    help="validate a seeded random sample of N images (see --sample-seed)")
    group.addoption("--sample-seed", type=int, default=0, metavar="S",
                    help="seed of --sample (default 0: the same images every run)")
    group.addoption("--keep-activations", type=int, default=8, metavar="K",
                    help="keep the full activations of K images in the stores, for feature-map "
                         "pictures and diagnosis: the first ones and the worst for the most "
                         "tensors (default 8); the metrics always cover every image")
    group.addoption("--workers", type=int, default=None, metavar="N",
                    help="measure on a local Dask cluster of N worker processes (default: one "
                         "per core; 0 = in this process, for debugging; sets of at most 16 "
                         "images are always measured in this process)")
    group.addoption("--scheduler", default=None, metavar="ADDRESS",
                    help="measure on an existing Dask cluster (e.g. tcp://10.0.0.5:8786); its "
                         "workers must reach the cache folder and the images at the same paths")
    group.addoption("--budget", default=None, metavar="FILE",
                    help="budget TOML (default: validation/budgets/<model>.toml if present)")
    group.addoption("--baseline", default=None, metavar="FILE",
                    help="baseline JSON (default: golden/baselines/<model>/<target>.json, the target "
                         "being the device and the Keras/TensorFlow versions)")
    group.addoption("--update-baseline", action="store_true", default=False,
                    help="rewrite the baseline with this run's metrics (atomically)")
    group.addoption("--results", default=None, metavar="OUT.json",
                    help="write the machine-readable results of the run")
    group.addoption("--repro", default=None, metavar="DIR",
                    help="write a minimal reproducer of the first diverging layer into DIR: a "
                         "one-layer Forge builder with its weights, its input and Keras's output "
                         "as .floats, the Keras layer as a model, and an XCTest")
    group.addoption("--report", default=None, metavar="OUT.md",
                    help="write a markdown report (needs the reports package)")
    group.addoption("--validation-cache", default=None, metavar="DIR",
                    help="cache folder of conversions and stores (default: $KERAS2METAL_CACHE, "
                         "else the user cache directory, e.g. ~/.cache/keras2metal/validation)")
    group.addoption("--cache-limit", default=None, metavar="SIZE",
                    help="prune least recently used conversions at the end of the run until the "
                         "cache fits SIZE (e.g. 20GB; default $KERAS2METAL_CACHE_LIMIT or 20GB)")
