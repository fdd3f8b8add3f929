"""The coverage table: which keras.applications families convert and pass validation on the
reference device, under which Keras, from the suite's results files (and the conversions'
manifests, for the custom kernels).  ``python -m reports coverage FILES... --readme README.md``
rewrites the table between the README's coverage markers; nothing here judges anything.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.manifest import load_manifest
from reports.results import ResultsError, load_results

BEGIN = "<!-- coverage:begin (python -m reports coverage) -->"
END = "<!-- coverage:end -->"
KERAS_MAJORS = ("3", "2")
# Display names of the keras.applications families, longest prefix first.
FAMILIES = [("efficientnetv2", "EfficientNetV2"), ("efficientnet", "EfficientNet"),
            ("mobilenetv3", "MobileNetV3"), ("mobilenetv2", "MobileNetV2"),
            ("mobilenet", "MobileNet"), ("inception_resnet", "InceptionResNetV2"),
            ("inception", "InceptionV3"), ("xception", "Xception"), ("densenet", "DenseNet"),
            ("nasnet", "NASNet"), ("convnext", "ConvNeXt"), ("vgg", "VGG"),
            ("resnet", "ResNet"), ("tiny_yolo", "YOLOv2"), ("yolo", "YOLOv2"),
            ("default", "default")]


@dataclass
class Row:
    model: str
    input_size: str = ""
    layers: int = 0
    tensors: int = 0
    parameters: int = 0
    converter_parameters: int = 0
    kernels: dict = field(default_factory=dict)           # kernel -> layers running it
    results: dict = field(default_factory=dict)           # Keras major -> verdict text

    @property
    def family(self) -> str:
        name = self.model.split("@")[0]
        if name.startswith("resnet") and name.endswith("v2"):
            return "ResNetV2"
        return next((label for prefix, label in FAMILIES if name.startswith(prefix)), name)


def _verdict_text(results) -> str:
    text = results.verdict
    judged = results.count("pass") + results.count("fail")
    if judged:
        text += f" ({results.count('pass')}/{judged} tensors)"
    return text


def coverage_rows(paths) -> list:
    """One row per model from results files and manifests (told apart by their format)."""
    rows, kernels = {}, {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        if str(data.get("format", "")).startswith("keras2metal.manifest"):
            manifest = load_manifest(path)
            model = manifest.source.model or manifest.name
            counts = {}
            for use in manifest.custom_kernels or []:
                counts[use.kernel] = counts.get(use.kernel, 0) + 1
            kernels[model] = counts
            continue
        results = load_results(path)
        row = rows.setdefault(results.source_model, Row(results.source_model))
        row.input_size = "x".join(str(v) for v in results.input_size)
        row.layers, row.tensors = results.totals.layers, results.totals.tensors
        row.parameters = results.totals.parameters
        row.converter_parameters = results.totals.converter_parameters
        major = str(results.environment.get("keras", "?")).split(".")[0]
        row.results[major] = _verdict_text(results)
    for model, counts in kernels.items():
        if model in rows:
            rows[model].kernels = counts
    if not rows:
        raise ResultsError("no results files among the files given; pass the files "
                           "`pytest validation ... --results FILE` wrote")
    return sorted(rows.values(), key=lambda r: (r.family, r.parameters))


def _parameters(row) -> str:
    """The device's parameter total; those of layers the converter adds shown apart, so the
    first number is the folded Keras model's count."""
    if not row.converter_parameters:
        return f"{row.parameters:,}"
    return f"{row.parameters - row.converter_parameters:,} + {row.converter_parameters:,} added"


def coverage_table(rows) -> str:
    header = ["Family", "Model", "Input", "Forge layers", "Custom kernels", "Tensors",
              "Parameters"] + [f"Keras {m}" for m in KERAS_MAJORS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        kernels = ", ".join(f"{k} ×{n}" for k, n in sorted(row.kernels.items())) or "none"
        cells = [row.family, row.model, row.input_size, str(row.layers), kernels, str(row.tensors),
                 _parameters(row)] + [row.results.get(m, "not run here") for m in KERAS_MAJORS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_coverage(paths, readme) -> str:
    """Rewrite the table between the README's markers; returns the table."""
    table = coverage_table(coverage_rows(paths))
    path = Path(readme)
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ResultsError(f"{path}: no coverage markers; put the lines {BEGIN!r} and {END!r} "
                           "where the table goes")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    path.write_text(f"{before}{BEGIN}\n{table}\n{END}{after}")
    return table


__all__ = ["BEGIN", "END", "coverage_rows", "coverage_table", "write_coverage"]
