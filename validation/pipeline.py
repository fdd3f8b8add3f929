"""The heavy work of a validation run, cached on disk: convert → device results → golden.

``prepare(settings)`` returns a :class:`Prepared` with the manifest, the golden store and the
device store of one (model, weights, seed, images, device source), producing what is missing:

1. **conversion** (``core.cli.resolve_model`` + ``core.convert.convert``): weights, builder,
   manifest, folded model;
2. **device store**: with ``device_dump`` the folder from the phone is ingested
   (``device_pull.ingest.ingest_dump``), and the run's images are the ones the dump holds
   (``device_pull.ingest.dump_image_files``: found by name in ``--images``, then in the built-in
   samples) plus ``--images``; dumps of another conversion are data problems of every tensor.  Without
   a dump folder the reference device runs the generated builder and weights on the images
   (``--fault KIND:LAYER`` injects one conversion bug), its dump folder is ingested and then
   deleted;
3. **golden store** (``golden.capture_golden``): Keras on the same images.

Cache layout (the user cache directory, ``$KERAS2METAL_CACHE`` or ``--validation-cache``; see
:mod:`validation.cache` for its location, size limit and pruning)::

    <cache>/<model>-<conversion key>/         one conversion
        Parameters/  src/  models/            weights + manifest, builder, folded model
        golden-<images key>.h5                golden store per image set
        device-<device key>.h5                device store per image set and device source
        *.lock                                flock(2) files serialising writers

Keys are sha256 digests of everything the artifact depends on: the model (zoo key, or the model
file's bytes), the weights (value, or the weights file's bytes), the seed, the image files'
names and bytes, the dump folder's file list (names, sizes, mtimes) or the injected fault, the
Keras and TensorFlow that convert and capture golden (:func:`keras_id`), and the source of the
packages that produce the artifact (``core``, ``golden``, ``device_pull``), so a change of the
converter invalidates its conversions.  Every artifact is written atomically by its
producer and guarded by an exclusive file lock, so parallel pytest-xdist workers (and parallel
runs) compute each artifact once and the others wait and reuse it.
"""
import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from imagesets import FOLDERS
from validation.cache import default_cache_dir, mark_used
from core.manifest import Manifest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = ROOT / "core" / "data" / "default_model"
SAMPLE_IMAGES = ROOT / "core" / "data" / "images"
DEFAULT_MODEL = "default"


class ValidationSetupError(RuntimeError):
    """The run cannot be prepared (bad model, images, dump folder...); the text says what to do."""


# -- settings -----------------------------------------------------------------------------

@dataclass
class Settings:
    """What a validation run is about; paths are resolved against ``base_dir``."""
    model: str = DEFAULT_MODEL
    weights: Optional[str] = None
    seed: int = 0
    images: Optional[list] = None
    labels: Optional[str] = None
    limit: Optional[int] = None
    sample: Optional[int] = None
    sample_seed: int = 0
    device_dump: Optional[str] = None
    fault: Optional[str] = None
    cache_dir: Optional[str] = None
    base_dir: str = "."
    name: Optional[str] = None
    preprocessing: Optional[str] = None
    keep_activations: int = 8
    workers: Optional[int] = None
    scheduler: Optional[str] = None
    progress: bool = False

    def __post_init__(self):
        base = Path(self.base_dir).resolve()
        self.base_dir = str(base)
        from core.zoo import zoo_entry

        entry = zoo_entry(str(self.model))
        self.zoo_key = entry.key if entry is not None else None
        if entry is None:
            path = _abs(self.model, base)
            if not path.is_file():
                raise ValidationSetupError(
                    f"--model {self.model}: neither a zoo name (DEFAULT, RESNET_50, ...; see "
                    "`keras2metal --help`) nor an existing .keras/.h5 file")
            self.model = str(path)
        if self.weights is None:
            if entry is None:
                self.weights = "file"
            else:
                self.weights = "trained" if getattr(entry, "trained", False) else "random"
        elif self.weights not in ("random", "imagenet", "file", "trained"):
            self.weights = str(_abs(self.weights, base))
        is_default = self.zoo_key == DEFAULT_MODEL
        self.default_images = not self.images
        if self.images:
            self.images = [str(_abs(p, base)) for p in self.images]
        else:
            self.images = [str(DEFAULT_MODEL_DIR / "images" if is_default else SAMPLE_IMAGES)]
        if self.labels == FOLDERS:
            pass
        elif self.labels:
            self.labels = str(_abs(self.labels, base))
        else:
            self.labels = _builtin_labels(self.images, is_default, entry)
        if self.device_dump:
            self.device_dump = str(_abs(self.device_dump, base))
            if not Path(self.device_dump).is_dir():
                raise ValidationSetupError(f"--device-dump {self.device_dump}: no such folder; "
                                           "copy the app's Documents folder off the phone first")
            if self.fault:
                raise ValidationSetupError("--fault applies to the reference device only; drop it "
                                           "or drop --device-dump")
        if self.cache_dir is None:
            self.cache_dir = str(default_cache_dir())
        self.cache_dir = str(_abs(self.cache_dir, base))

    @property
    def model_label(self) -> str:
        return self.zoo_key or Path(self.model).stem


def _builtin_labels(images, is_default: bool, entry):
    """The labels file of the built-in sample images, when every image comes from that set."""
    def within(folder):
        return all(Path(p).resolve() == folder or folder in Path(p).resolve().parents
                   for p in images)

    if is_default and within((DEFAULT_MODEL_DIR / "images").resolve()):
        return str(DEFAULT_MODEL_DIR / "labels.json")
    if entry is not None and entry.kind == "classifier" and not is_default \
            and within(SAMPLE_IMAGES.resolve()):
        return str(SAMPLE_IMAGES / "imagenet_labels.json")      # the ImageNet samples
    return None


def _abs(path, base: Path) -> Path:
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else (base / p)


# -- hashing ------------------------------------------------------------------------------

def _sha_file(path, h=None):
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h


def digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


_CODE_HASHES = {}


def code_hash(package: str) -> str:
    """sha256 of the package's Python sources (and data files it reads), cached per process."""
    if package not in _CODE_HASHES:
        h = hashlib.sha256()
        folder = ROOT / package
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".cfg", ".metal", ".swift", ".json",
                                                  ".keras") \
                    and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(ROOT)).encode())
                _sha_file(path, h)
        _CODE_HASHES[package] = h.hexdigest()
    return _CODE_HASHES[package]


def keras_id() -> list:
    """The Keras (as core.kerasenv picks it) and TensorFlow installed, read without importing
    them: the cache is shared by every environment, and a Keras 2 run must not reuse what Keras 3
    converted or captured."""
    from stores import package_version

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    keras = "tf-keras" if legacy else "keras"
    return [keras, package_version(keras), package_version("tensorflow")]


def images_id(paths) -> list:
    return [[Path(p).name, _sha_file(p).hexdigest()] for p in paths]


def dump_id(folder) -> list:
    out = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            st = path.stat()
            out.append([str(path.relative_to(folder)), st.st_size, st.st_mtime_ns])
    return out


@contextlib.contextmanager
def file_lock(path):
    """An exclusive flock(2) on ``path`` (created if needed) for the duration of the block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# -- the prepared run ---------------------------------------------------------------------

@dataclass
class Prepared:
    settings: Settings
    folder: Path
    manifest_path: Path
    manifest: Manifest
    image_paths: list
    measurements_path: Optional[Path] = None
    golden_path: Optional[Path] = None         # the kept images' activations
    device_path: Optional[Path] = None
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


class Pipeline:
    """Produces and caches the artifacts of one :class:`Settings`; keeps the Keras model in memory
    between steps of the same process."""

    def __init__(self, settings: Settings, log=None):
        self.s = settings
        self.log = log or (lambda msg: None)
        self._model = None
        self._resolved = None
        self._image_paths = None
        self._images_key = None

    # images --------------------------------------------------------------------------
    @property
    def image_paths(self) -> list:
        """--images (default: the model's samples); with --device-dump, the images the dump
        holds (found by name in --images, then in the built-in samples) plus --images."""
        if self._image_paths is None:
            from imagesets.images import ImageError, list_images, select

            chosen = {"limit": self.s.limit, "sample": self.s.sample, "seed": self.s.sample_seed}
            try:
                given = None if self.s.default_images else list_images(self.s.images)
                if not self.s.device_dump:
                    self._image_paths = select(given or list_images(self.s.images), **chosen)
                else:
                    self._image_paths = select(self._dump_image_paths(given), **chosen)
            except ImageError as exc:
                raise ValidationSetupError(f"--images: {exc}") from None
        return self._image_paths

    def _dump_image_paths(self, given) -> list:
        from core.manifest import ManifestError, load_manifest
        from device_pull.ingest import IngestError, dump_image_files

        try:
            manifest = load_manifest(self.convert())
        except ManifestError as exc:
            raise ValidationSetupError(str(exc)) from None
        try:
            return dump_image_files(self.s.device_dump, manifest, given,
                                    search=(SAMPLE_IMAGES, DEFAULT_MODEL_DIR / "images"))
        except IngestError as exc:
            raise ValidationSetupError(f"--device-dump: {exc}") from None

    @property
    def images_key(self) -> str:
        if self._images_key is None:
            self._images_key = digest(images_id(self.image_paths))
        return self._images_key

    # keys ----------------------------------------------------------------------------
    def conversion_key(self) -> str:
        s = self.s
        model_id = s.zoo_key or ["file", _sha_file(s.model).hexdigest()]
        weights_id = s.weights
        if Path(str(s.weights)).is_file():
            weights_id = ["file", _sha_file(s.weights).hexdigest()]
        return digest("conversion/1", model_id, weights_id, s.seed, s.name, s.preprocessing,
                      code_hash("core"), keras_id())

    def folder(self) -> Path:
        key = self.conversion_key()
        return Path(self.s.cache_dir) / f"{self.s.model_label}-{key[:16]}"

    # the Keras model -----------------------------------------------------------------
    def keras_model(self):
        if self._resolved is None:
            from core.cli import resolve_model
            from core.errors import ConversionError

            args = argparse.Namespace(model=self.s.model, weights=self.s.weights, seed=self.s.seed,
                                      name=self.s.name, preprocessing=self.s.preprocessing,
                                      model_dir=str(self.folder() / "models"), unsafe=False)
            try:
                self._resolved = resolve_model(args)
            except ConversionError as exc:
                raise ValidationSetupError(f"--model {self.s.model}: {exc}") from None
        return self._resolved

    # steps ---------------------------------------------------------------------------
    def convert(self) -> Path:
        folder = self.folder()
        param_dir = folder / "Parameters"
        manifests = sorted(param_dir.glob("*.manifest.json")) if param_dir.is_dir() else []
        if manifests:
            return manifests[0]
        with file_lock(folder.with_suffix(".lock")):
            manifests = sorted(param_dir.glob("*.manifest.json")) if param_dir.is_dir() else []
            if manifests:
                return manifests[0]
            from core.convert import convert
            from core.errors import ConversionError

            from validation.verdicts import weights_provenance

            self.log(f"converting {self.s.model} "
                     f"({weights_provenance(self.s.weights, self.s.seed)})")
            model, name, family, kind, source, heads = self.keras_model()
            tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                result = convert(model, name=name, family=family, param_dir=tmp / "Parameters",
                                 src_out_dir=tmp / "src", model_dir=tmp / "models",
                                 output_kind=kind, source=source, heads=heads)
            except ConversionError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise ValidationSetupError(f"conversion of {self.s.model} failed: {exc}") from None
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            from core.kerasenv import KERAS3

            original = tmp / "models" / (f"{name}_original.keras" if KERAS3
                                         else f"{name}_original.h5")
            model.save(str(original))         # the measuring workers load it from here
            (tmp / "settings.json").write_text(json.dumps({
                "model": self.s.model, "weights": self.s.weights, "seed": self.s.seed,
                "name": name}, indent=1))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
            return folder / "Parameters" / result.manifest_path.name

    @staticmethod
    def original_model_path(folder: Path) -> Path:
        """The original Keras model, saved with the conversion for the measuring workers."""
        found = sorted((folder / "models").glob("*_original.*"))
        if not found:
            raise ValidationSetupError(f"{folder}: the cached conversion has no original model "
                                       "(made by an older version); delete the folder")
        return found[0]

    @classmethod
    def measuring_spec(cls, manifest_path: Path, manifest: Manifest, *, reference: bool = True,
                       fault: Optional[str] = None):
        """What a measuring worker loads (:class:`validation.stream.Spec`): the conversion's
        manifest and original Keras model, and with ``reference`` the reference device's builder
        and weights (with ``fault``); without it the device side is a phone's dump folder."""
        from validation import stream

        keras_model = str(cls.original_model_path(manifest_path.parent.parent))
        if not reference:
            return stream.Spec(str(manifest_path), keras_model)
        return stream.Spec(str(manifest_path), keras_model,
                           builder_path=str(manifest_path.parent / manifest.builder.file),
                           param_dir=str(manifest_path.parent), fault=fault)

    def golden(self, manifest_path: Path, manifest: Manifest) -> Path:
        """A golden store of the first ``keep_activations`` images alone, without any device
        run (the float16 pre-check asks before the device runs)."""
        paths = self.image_paths[:max(1, self.s.keep_activations)]
        key = digest("golden/1", images_id(paths), code_hash("golden"))[:16]
        path = manifest_path.parent.parent / f"golden-first-{key}.h5"
        if path.is_file():
            return path
        with file_lock(path.with_suffix(".lock")):
            if path.is_file():
                return path
            from golden import GoldenError, capture_golden

            self.log(f"capturing golden activations of {len(paths)} image(s)")
            try:
                capture_golden(self.keras_model()[0], manifest, paths, path, progress=False)
            except GoldenError as exc:
                raise ValidationSetupError(f"golden capture failed: {exc}") from None
        return path

    def measure(self, manifest_path: Path, manifest: Manifest):
        """The measurement of the images (cached): ``(measurements path, golden store, device
        store)``, the stores holding the kept images' activations."""
        from core.contracts import read
        from validation.evaluate import StaleStoreError, check_fresh
        from validation.measurements import Measurements

        folder = manifest_path.parent.parent
        if self.s.device_dump:
            source = ["dump", self.s.device_dump, dump_id(self.s.device_dump)]
        else:
            source = ["reference", self.s.fault]
        key = digest("measure/1", self.images_key, source, self.s.keep_activations,
                     code_hash("golden"), code_hash("device_pull"), code_hash("validation"))[:16]
        paths = (folder / f"measurements-{key}.json", folder / f"golden-{key}.h5",
                 folder / f"device-{key}.h5")
        if not paths[0].is_file():
            with file_lock(paths[0].with_suffix(".lock")):
                if not paths[0].is_file():
                    self._measure(manifest_path, manifest, paths)
        try:
            check_fresh(read(Measurements, paths[0]).manifest_sha256, manifest, paths[0])
        except StaleStoreError as exc:
            raise ValidationSetupError(str(exc)) from None
        return paths

    def _measure(self, manifest_path: Path, manifest: Manifest, paths):
        from core.atomic import write_text
        from core.contracts import dumps
        from validation import stream
        from validation.measurements import RunFacts, from_tally

        spec = self.measuring_spec(manifest_path, manifest, reference=not self.s.device_dump,
                                   fault=self.s.fault)
        runs = None
        if self.s.device_dump:
            from device_pull.ingest import IngestError, dump_images, run_attrs_of

            try:
                found = dump_images(self.s.device_dump, manifest, self.image_paths)
            except IngestError as exc:
                raise ValidationSetupError(f"--device-dump: {exc}") from None
            runs = {run.key: run for run in found}
            facts = run_attrs_of(found, None)
            run = RunFacts(device=facts["device"], fps=facts.get("fps"),
                           latency_s=facts.get("latency_s"), compile_s=facts.get("compile_s"),
                           run_logs=facts.get("run_logs") or {},
                           warnings=facts.get("warnings") or [])
        else:
            from device_pull.reference_device.run import DEVICE_LABEL

            run = RunFacts(device=DEVICE_LABEL, run_logs={}, warnings=[])
        self.log(f"measuring {len(self.image_paths)} image(s)"
                 + (f" with fault {self.s.fault}" if self.s.fault else ""))
        try:
            measurement = stream.measure(spec, self.image_paths,
                                         stream.KeptStores(str(paths[1]), str(paths[2]),
                                                           run.device),
                                         runs=runs, keep=self.s.keep_activations,
                                         workers=self.s.workers, scheduler=self.s.scheduler,
                                         progress=self.s.progress)
        except stream.MeasureError as exc:
            raise ValidationSetupError(str(exc)) from None
        if runs is None:
            run.host_latency_s = measurement.tally.latencies
        write_text(paths[0], dumps(from_tally(measurement, manifest, run)))

    def prepare(self, *, stores: bool = True) -> Prepared:
        """Everything of the run; with ``stores=False`` only the conversion."""
        import time

        from core.manifest import ManifestError, load_manifest

        t0 = time.perf_counter()
        manifest_path = self.convert()
        try:
            manifest = load_manifest(manifest_path)
        except ManifestError as exc:
            raise ValidationSetupError(str(exc)) from None
        prepared = Prepared(self.s, manifest_path.parent.parent, manifest_path, manifest,
                            self.image_paths)
        mark_used(prepared.folder)
        prepared.timings["conversion_s"] = time.perf_counter() - t0
        if stores:
            t1 = time.perf_counter()
            prepared.measurements_path, prepared.golden_path, prepared.device_path = \
                self.measure(manifest_path, manifest)
            prepared.timings["measure_s"] = time.perf_counter() - t1
        return prepared

