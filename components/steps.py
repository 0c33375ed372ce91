"""One component per pipeline step. Each body imports its genaug.steps function, calls it
with the artifact paths, and copies the returned metadata onto its main output artifact.

KFP serializes each function's source into the task, so imports live inside the bodies.
The image already holds kfp, so tasks do not pip-install it at start.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components.settings import IMAGE

component = dsl.component(base_image=IMAGE, install_kfp_package=False)


@component
def validate_params(dataset: str, generator: str, classifier: str, profile: str, seed: int,
                    ratio: float, params: Output[Artifact]):
    """Fail the run before any work when a parameter is unknown or out of range."""
    import json

    from genaug.steps import get

    meta = get("validate_params")(dataset, generator, classifier, profile, seed, ratio)
    params.metadata.update(meta)
    with open(params.path, "w") as f:
        json.dump(meta, f)


@component
def prepare_data(dataset: str, profile: str, data: Output[Dataset]):
    """Real images as uint8 train/val/test arrays with a content hash."""
    from genaug.steps import get

    data.metadata.update(get("prepare_data")(dataset, profile, data.path))


@component
def train_generator(data: Input[Dataset], generator: str, profile: str, seed: int,
                    model: Output[Model], samples: Output[HTML]):
    """Train the class-conditional generator."""
    from genaug.steps import get

    model.metadata.update(get("train_generator")(data.path, generator, profile, seed, model.path, samples.path))


@component
def synthesize(model: Input[Model], data: Input[Dataset], ratio: float, seed: int,
               synthetic: Output[Dataset]):
    """ratio * n_real labelled synthetic images, class-balanced."""
    from genaug.steps import get

    synthetic.metadata.update(get("synthesize")(model.path, data.path, ratio, seed, synthetic.path))


@component
def train_classifier(data: Input[Dataset], classifier: str, profile: str, seed: int, ratio: float,
                     model: Output[Model], curves: Output[HTML], synthetic: Input[Dataset] = None):
    """Train on the real data, or on real + synthetic when ``synthetic`` is given."""
    from genaug.steps import get

    meta = get("train_classifier")(data.path, classifier, profile, seed, model.path, curves.path,
                                   synthetic.path if synthetic is not None else "", ratio)
    model.metadata.update(meta)


@component
def evaluate(data: Input[Dataset], classifier_real: Input[Model], classifier_augmented: Input[Model],
             synthetic: Input[Dataset], scores: Output[Metrics], confusion_real: Output[ClassificationMetrics],
             confusion_augmented: Output[ClassificationMetrics], report: Output[Artifact], page: Output[HTML]):
    """Test accuracy, per-class report and confusion matrices for both classifiers."""
    import json

    from genaug.steps import get

    result = get("evaluate")(data.path, classifier_real.path, classifier_augmented.path,
                             synthetic.path, report.path, page.path)
    for key in ("accuracy_real", "accuracy_augmented", "accuracy_delta"):
        scores.log_metric(key, result[key])
    # Written by hand: locally KFP never writes it, and a task whose metrics file is
    # missing can never be served from the cache.
    with open(scores.path, "w") as f:
        json.dump(scores.metadata, f)
    for variant, out in (("real", confusion_real), ("augmented", confusion_augmented)):
        classes = list(result[variant]["per_class"])
        out.log_confusion_matrix(classes, result[variant]["confusion_matrix"])
    report.metadata.update({k: v for k, v in result.items() if k not in ("real", "augmented")})
    report.metadata["seconds"] = result["seconds"]


@component
def export_onnx(generator: Input[Model], classifier_real: Input[Model], classifier_augmented: Input[Model],
                generator_onnx: Output[Model], classifier_onnx: Output[Model]):
    """ONNX files for the generator and the better classifier, checked with onnxruntime."""
    from genaug.steps import get

    meta = get("export_onnx")(generator.path, classifier_real.path, classifier_augmented.path,
                              generator_onnx.path, classifier_onnx.path)
    generator_onnx.metadata.update({**meta["generator"], "seconds": meta["seconds"]})
    classifier_onnx.metadata.update({**meta["classifier"], "seconds": meta["seconds"]})


@component
def report(params: Input[Artifact], data: Input[Dataset], generator: Input[Model], synthetic: Input[Dataset],
           classifier_real: Input[Model], classifier_augmented: Input[Model], evaluation: Input[Artifact],
           generator_onnx: Input[Model], classifier_onnx: Input[Model],
           summary: Output[Artifact], table: Output[Markdown]):
    """summary.json for the run, and the same figures as a table in the KFP UI."""
    import json

    from genaug.steps import get
    from genaug.steps.report import table as as_table

    with open(evaluation.path) as f:
        ev = json.load(f)
    ev["seconds"] = evaluation.metadata["seconds"]
    export_meta = {"generator": dict(generator_onnx.metadata), "classifier": dict(classifier_onnx.metadata),
                   "seconds": generator_onnx.metadata["seconds"]}
    steps = {"validate_params": params.metadata, "prepare_data": data.metadata,
             "train_generator": generator.metadata, "synthesize": synthetic.metadata,
             "train_classifier_real": classifier_real.metadata,
             "train_classifier_augmented": classifier_augmented.metadata,
             "evaluate": ev, "export_onnx": export_meta}
    artifacts = {name: art.uri for name, art in (
        ("data", data), ("generator", generator), ("synthetic", synthetic),
        ("classifier_real", classifier_real), ("classifier_augmented", classifier_augmented),
        ("evaluation", evaluation), ("generator_onnx", generator_onnx), ("classifier_onnx", classifier_onnx))}
    # KFP metadata turns every number into a float; the parameters' own file keeps their types.
    with open(params.path) as f:
        run_params = json.load(f)
    run_params.pop("seconds", None)
    result = get("report")(run_params, steps, artifacts, summary.path)
    summary.metadata.update({k: result[k] for k in ("accuracy_real", "accuracy_augmented", "accuracy_delta")})
    with open(table.path, "w") as f:
        f.write("```\n" + as_table(result) + "\n```\n")
