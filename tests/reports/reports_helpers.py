"""Synthetic results of the validation suite's format (keras2metal.results/2) for rendering tests.

They are built directly from the results contract (not by the judge), so the report tests check
rendering only: whatever verdicts a file holds, the report must show exactly those.
"""
from pathlib import Path

import numpy as np
from PIL import Image

from core.contracts import dumps
from validation.verdicts import (Accuracy, BaselineComparison, Budget, Check, DataProblem,
                                 Divergence, FirstDataProblem, Latency, Metrics, Performance,
                                 Regression, Results, TensorResult, TopK, Totals, Worst)

DATA = Path(__file__).resolve().parent / "data"

# the eight networks of the zoo plus the embedded default model, as the validation suite names them
MODELS = [
    # model, source, (H, W), layers, tensors, parameters, kind
    ("tiny_yolo", "tiny_yolo", (416, 416), 16, 17, 15_867_885, "yolo"),
    ("yolo", "yolo", (608, 608), 31, 33, 50_983_561, "yolo"),
    ("vgg_16", "vgg16", (224, 224), 21, 23, 138_357_544, "classifier"),
    ("resnet_50", "resnet50", (224, 224), 94, 111, 25_530_472, "classifier"),
    ("inception_v3", "inception_v3", (299, 299), 120, 130, 23_817_352, "classifier"),
    ("inception_resnet_v2", "inception_resnet_v2", (299, 299), 410, 420, 55_813_192,
     "classifier"),
    ("mobilenet", "mobilenet", (224, 224), 57, 59, 4_231_976, "classifier"),
    ("xception", "xception", (299, 299), 80, 90, 22_855_952, "classifier"),
    ("shapes_net", "default", (32, 32), 18, 22, 18_968, "classifier"),
]

ENVIRONMENT = {"python": "3.11.9", "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "1.26.4",
               "platform": "Linux-6.1-x86_64", "host": "ci-runner-1"}


INTERVALS = {0.875: [0.529, 0.978], 1.0: [0.676, 1.0]}     # 95% Wilson intervals, 8 images


def _topk(top1, top5):
    return TopK(top1=top1, top5=top5, images=8, top1_ci=INTERVALS[top1],
                top5_ci=INTERVALS[top5])


def _tensor(i, rng, verdict):
    mean_abs = float(f"{1e-4 * (1 + i / 10) * (1 + rng.random()):.4g}")
    rel = float(f"{2e-4 * (1 + i / 5) * (1 + rng.random()):.4g}")
    if verdict == "fail":
        rel = float(f"{0.06 * (1 + i / 40):.4g}")
    metrics = Metrics(max_abs=float(f"{mean_abs * 20:.4g}"), mean_abs=mean_abs,
                      rmse=float(f"{mean_abs * 1.3:.4g}"), rel_error=rel,
                      cosine=float(f"{1 - rel ** 2 / 2:.8f}"),
                      range=[float(f"{-3 * rng.random():.4g}"),
                             float(f"{1 + 10 * rng.random():.4g}")],
                      golden_rms=1.0, golden_max_abs=5.0, nan_inf=0, golden_nan_inf=0,
                      count=56 * 56 * 64, images=8)
    budget = Budget(rule="default" if i % 7 else "conv*", mean_abs=0.01, max_abs=0.5,
                    rel_error=0.05, cosine=1 - 0.05 ** 2)
    t = TensorResult(name=f"layer_{i:03d}", index=i + 1, forge_type="Conv",
                     keras_layer=f"keras_{i:03d}", shape=[56, 56, 64] if i else [224, 224, 3],
                     inputs=[f"layer_{i - 1:03d}"] if i else [], verdict=verdict, reason="",
                     metrics=metrics, budget=budget)
    if verdict == "fail":
        t.reason = f"rel_error {rel:.4g} > budget 0.05"
    if verdict == "data_problem":
        t.metrics, t.budget = None, None
        t.problems = [DataProblem(kind="truncated", image="dog",
                                  reason=f"net-layer_{i:03d}.floats: 100 bytes is shorter than "
                                         "expected", fix="copy the Documents folder again")]
        t.reason = "truncated: " + t.problems[0].reason
    return t


def make_results(model="resnet_50", source="resnet50", size=(224, 224), layers=94, tensors=111,
                 parameters=25_530_472, kind="classifier", n=None, seed=0, fail_at=None,
                 problem_at=None, device="reference device", weights="random",
                 baseline="not_judged") -> Results:
    """Plausible results: ``n`` tensors with rising errors; from ``fail_at`` on tensors are over
    budget; ``problem_at`` has a truncated dump."""
    rng = np.random.default_rng(seed)
    n = tensors if n is None else n
    rows = []
    for i in range(n):
        verdict = "pass"
        if fail_at is not None and i >= fail_at:
            verdict = "fail"
        if problem_at is not None and i == problem_at:
            verdict = "data_problem"
        rows.append(_tensor(i, rng, verdict))
    first = next((t for t in rows if t.verdict == "fail"), None)
    divergence = None if first is None else Divergence(
        tensor=first.name, index=first.index, forge_type="Conv", keras_layer=first.keras_layer,
        forge_layers=[first.name], reason=first.reason, hint="check the padding of this layer")
    problem = next((t for t in rows if t.verdict == "data_problem"), None)
    first_problem = None if problem is None else FirstDataProblem(
        tensor=problem.name, index=problem.index, keras_layer=problem.keras_layer,
        kind="truncated", reason=problem.problems[0].reason, fix=problem.problems[0].fix)
    judged = [t for t in rows if t.verdict in ("pass", "fail")]
    worst = max(judged, key=lambda t: t.metrics.rel_error) if judged else None
    if kind == "classifier" and weights != "random":
        acc = Accuracy(images=8, labelled=8, device=_topk(0.875, 1.0),
                       keras=_topk(0.875, 1.0), agreement=_topk(1.0, 1.0),
                       checks=[Check(name="device_top1", verdict="pass", reason="0.875, min 0.8",
                                     value=0.875, threshold=0.8)])
    elif kind == "classifier":
        acc = Accuracy(images=8, labelled=8, device=None, keras=None,
                       agreement=_topk(1.0, 1.0),
                       checks=[Check(name="device_top1", verdict="not_judged",
                                     reason="random weights: accuracy against labels is not "
                                            "meaningful"),
                               Check(name="agreement_top1", verdict="pass",
                                     reason="same top-1 class on 1.000 of 8 image(s)",
                                     value=1.0, threshold=1.0)])
    else:
        acc = Accuracy(images=8, labelled=0, device=None, keras=None, agreement=None,
                       checks=[Check(name="device_top1", verdict="not_judged",
                                     reason="output kind 'yolo': top-k accuracy does not apply")])
    if device == "reference device":
        perf = Performance(source="host emulation", fps=None, latency_s=None,
                           host_emulation_s=Latency(mean=0.081, min=0.079, max=0.09),
                           checks=[Check(name="fps", verdict="not_judged",
                                         reason="reference device: host emulation time")])
    else:
        perf = Performance(source="phone run log", fps=24.5,
                           latency_s=Latency(mean=0.0408, min=0.039, max=0.05), host_emulation_s=None,
                           checks=[Check(name="fps", verdict="pass", reason="24.50 fps, minimum 10",
                                         value=24.5, threshold=10.0)])
    if baseline == "fail":
        base = BaselineComparison(verdict="fail", path=f"golden/baselines/{source}.json",
                                  reason="2 metric(s) worse than the baseline beyond tolerance",
                                  regressions=[Regression(what="layer_003", metric="mean_abs",
                                                          baseline=1e-4, current=4e-4,
                                                          tolerance=1.5, worse_by="4.0x"),
                                               Regression(what="accuracy.device.top1",
                                                          metric="top1", baseline=1.0,
                                                          current=0.875, tolerance=0.0,
                                                          worse_by="-12.5 points")])
    else:
        base = BaselineComparison(verdict="not_judged", path=f"golden/baselines/{source}.json",
                                  reason="no baseline: nothing compared")
    fails = sum(t.verdict == "fail" for t in rows)
    problems = sum(t.verdict == "data_problem" for t in rows)
    verdict = "fail" if fails or problems or baseline == "fail" else "pass"
    return Results(
        model=model, source_model=source, weights=weights, seed=0, input_size=list(size),
        device=device, images=[f"image_{k}.jpg" for k in range(8)], environment=dict(ENVIRONMENT),
        command=f"pytest validation --model {source} --results results/{model}.json",
        totals=Totals(layers=layers, tensors=tensors, parameters=parameters),
        budget_file=f"validation/budgets/{source}.toml", tensors=rows,
        first_divergence=divergence, first_data_problem=first_problem,
        worst_tensor=None if worst is None else Worst(tensor=worst.name, metric="rel_error",
                                                      value=worst.metrics.rel_error, budget=0.05),
        accuracy=acc, performance=perf, baseline=base, verdict=verdict,
        verdict_reason=f"{fails} over budget, {problems} data problems" if verdict == "fail"
        else f"all {len(judged)} judged tensors within budget")


def write_results(path, results) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(results))
    return path


def all_models(folder) -> list:
    """Results files of the eight networks and the default model in ``folder``."""
    paths = []
    for k, (model, source, size, layers, tensors, params, kind) in enumerate(MODELS):
        data = make_results(model, source, size, layers, tensors, params, kind,
                            n=min(tensors, 60), seed=k,
                            fail_at=45 if model == "resnet_50" else None,
                            weights="trained" if source == "default" else "random")
        paths.append(write_results(Path(folder) / f"{model}.json", data))
    return paths


def assert_picture(path, min_w=400, min_h=200):
    """A PNG of a reasonable size that is not blank (many colours, real contrast)."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert w >= min_w and h >= min_h, (w, h)
        pixels = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 10, "picture is (nearly) blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def converted_manifest(tmp_path, model: str, gelus: int = 0):
    """A real conversion's manifest: a small network with ``gelus`` GELU activations (each run
    by the project's GELUKernel), recorded as a conversion of ``model``."""
    from core.convert import convert
    from core.kerasenv import keras

    inputs = keras.Input((8, 8, 3))
    x = inputs
    for k in range(gelus):
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"conv{k}")(x)
        x = keras.layers.Activation("gelu", name=f"gelu{k}")(x)
    net = keras.Model(inputs, keras.layers.Conv2D(4, 1, name="head")(x), name=model)
    result = convert(net, name=model, family="raw", param_dir=tmp_path / f"{model}-P",
                     src_out_dir=tmp_path / f"{model}-S", output_kind="raw", verify=False,
                     source={"model": model, "weights": "random", "seed": 0})
    return result.manifest_path
