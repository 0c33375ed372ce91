"""One component per pipeline step. Each body imports its genaug.steps function, calls it
with the artifact paths, and copies the returned metadata onto its main output artifact.

KFP serializes each function's source into the task, so imports live inside the bodies.
The image already holds kfp, so tasks do not pip-install it at start. Service endpoints
and credentials reach the tasks as environment variables (locally from the runner's
environment; on a cluster from a Secret and a ConfigMap).
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components.settings import IMAGE

component = dsl.component(base_image=IMAGE, install_kfp_package=False)


@component
def resolve_config(parameters: dict, options: Output[Artifact]) -> dict:
    """Resolve the run's configuration once, before any work: every parameter checked and the
    profile's values filled in (genaug.params.resolve). ``options`` is run_options.json, from
    which later tasks take their sections; the returned data section is what prepare_data is
    cached by."""
    from genaug.steps import get

    meta = get("resolve_config")(parameters, options.path)
    # Unset sampler settings (a GAN's) are left out: KFP metadata holds no nulls.
    options.metadata.update({**{k: v for k, v in meta["parameters"].items() if v is not None},
                             "seconds": meta["seconds"]})
    from genaug.sections import DataConfig

    return DataConfig.from_dict(meta["config"]["data"]).task_input()


@component
def start_tracking(dataset: str, generator: str, classifier: str, profile: str, seed: int, ratio: float,
                   pipeline_run_id: str, run: Output[Artifact], kind: str = "run") -> str:
    """Open the MLflow parent run; its id is this task's output."""
    from genaug.steps import get

    meta = get("start_tracking")(dataset, generator, classifier, profile, seed, ratio, pipeline_run_id, kind=kind)
    run.metadata.update(meta)
    with open(run.path, "w") as f:
        f.write(meta["parent_run_id"])
    return meta["parent_run_id"]


@component
def data_version(dataset: str, requested: str, source: str = "", parent_run_id: str = "") -> str:
    """The raw data's version: ``requested`` when pinned, else a fingerprint of the files now;
    a user dataset's version from the registry, after snapshotting ``source`` when given.
    Logged as the MLflow run's input. Never cached: it looks at the data as it is now."""
    from genaug.steps import get

    return get("data_version")(dataset, requested, source=source, parent_run_id=parent_run_id)["data_version"]


@component
def prepare_data(section: dict, data_version: str, data: Output[Dataset]):
    """Real images as uint8 train/val/test arrays with a content hash.

    Cached by KFP: its inputs are the run's data section and the resolved data version,
    never a run id, so runs on unchanged data share one prepared copy."""
    from genaug.steps import get

    data.metadata.update(get("prepare_data")(data.path, data_version=data_version, data=section))


@component
def train_generator(data: Input[Dataset], options: Input[Artifact], parent_run_id: str, model: Output[Model],
                    samples: Output[HTML]):
    """Train the class-conditional generator (a diffusion model also records how it samples; a GAN
    with early stopping, the step it kept and its FID)."""
    from genaug.params import load_options
    from genaug.steps import get

    run = load_options(options.path)
    model.metadata.update(get("train_generator")(data.path, model.path, samples.path, parent_run_id=parent_run_id,
                                                 generator=run.generator, seed=run.seed, gan=run.gan,
                                                 diffusion=run.diffusion, sampler=run.sampler, metrics=run.metrics))


@component
def train_generator_trainjob(data: Input[Dataset], options: Input[Artifact], parent_run_id: str,
                             run_uid: str, nodes: int, gpus_per_node: int, gpu_resource: str, runtime: str,
                             timeout_hours: float, job: dict, model: Output[Model], samples: Output[HTML]):
    """NODES > 1: train the generator as a Kubeflow Trainer TrainJob of ``nodes`` nodes and
    hand it on as train_generator does. A CPU task: the GPUs are the TrainJob's."""
    from genaug.steps import get

    model.metadata.update(get("train_generator_trainjob")(
        data.path, options.path, model.path, samples.path, parent_run_id=parent_run_id,
        run_uid=run_uid, nodes=nodes, gpus_per_node=gpus_per_node, runtime=runtime,
        timeout_hours=timeout_hours, job={**job, "gpu_resource": gpu_resource}))


@component
def synthesize(model: Input[Model], data: Input[Dataset], ratio: float, seed: int, parent_run_id: str,
               synthetic: Output[Dataset], mode: str = "ratio", target: int = 0):
    """ratio * n_real labelled synthetic images, class-balanced; or with mode "balance" each
    class's top-up to the largest class (or to ``target`` images; 0: unset)."""
    from genaug.steps import get

    synthetic.metadata.update(get("synthesize")(model.path, data.path, ratio, seed, synthetic.path,
                                                parent_run_id=parent_run_id, mode=mode, target=target or None))


@component
def train_classifier(data: Input[Dataset], options: Input[Artifact], parent_run_id: str, model: Output[Model],
                     curves: Output[HTML], synthetic: Input[Dataset] = None, synthetic_only: bool = False):
    """Train on the real data, on real + synthetic when ``synthetic`` is given, or on the
    synthetic images alone with ``synthetic_only`` (for the Classification Accuracy Score)."""
    from genaug.params import load_options
    from genaug.steps import get

    run = load_options(options.path)
    meta = get("train_classifier")(data.path, model.path, curves.path,
                                   synthetic.path if synthetic is not None else "", run.synthesis.ratio,
                                   parent_run_id=parent_run_id, synthetic_only=synthetic_only,
                                   classifier=run.classifier, seed=run.seed, synth_mode=run.synthesis.mode,
                                   synth_target=run.synthesis.target)
    model.metadata.update(meta)


@component
def evaluate(data: Input[Dataset], classifier_real: Input[Model], classifier_augmented: Input[Model],
             classifier_synthetic: Input[Model], synthetic: Input[Dataset], parent_run_id: str,
             scores: Output[Metrics],
             confusion_real: Output[ClassificationMetrics], confusion_augmented: Output[ClassificationMetrics],
             report: Output[Artifact], page: Output[HTML]):
    """Test accuracy, per-class report and confusion matrices for both classifiers."""
    import json

    from genaug.steps import get

    result = get("evaluate")(data.path, classifier_real.path, classifier_augmented.path,
                             synthetic.path, report.path, page.path, parent_run_id=parent_run_id,
                             classifier_synthetic_path=classifier_synthetic.path)
    for key in ("accuracy_real", "accuracy_augmented", "accuracy_delta", "cas"):
        if result.get(key) is not None:
            scores.log_metric(key, result[key])
    # Written by hand: locally KFP never writes it, and a task whose metrics file is
    # missing can never be served from the cache.
    with open(scores.path, "w") as f:
        json.dump(scores.metadata, f)
    for variant, out in (("real", confusion_real), ("augmented", confusion_augmented)):
        out.log_confusion_matrix(list(result[variant]["per_class"]), result[variant]["confusion_matrix"])
    report.metadata.update({k: v for k, v in result.items() if k not in ("real", "augmented")})


@component
def evaluate_generator(data: Input[Dataset], generator: Input[Model], options: Input[Artifact], parent_run_id: str,
                       scores: Output[Metrics], report: Output[Artifact], page: Output[HTML]) -> str:
    """FID, KID, precision/recall, per-class FID and IS (when the network has logits) of the
    generator's images against the real training split, and per class the mean MS-SSIM of
    same-class pairs and the Likeness Score; what each was measured on is recorded.
    Returns the same as JSON text (KFP parameters cannot carry the nulls of unavailable metrics)."""
    import json

    from genaug.params import load_options
    from genaug.steps import get

    result = get("evaluate_generator")(data.path, generator.path, report.path, page.path, parent_run_id=parent_run_id,
                                       metrics=load_options(options.path).metrics)
    for mode, value in result["fid"].items():
        if value is not None:
            scores.log_metric(f"fid_{mode}", value)
    for key in ("kid", "precision", "recall", "inception_score", "msssim_generated", "msssim_real", "likeness_score"):
        if result.get(key) is not None:
            scores.log_metric(key, result[key])
    with open(scores.path, "w") as f:
        json.dump(scores.metadata, f)
    report.metadata.update({"network": (result["network"] or {}).get("name", "unavailable"),
                            "seconds": result["seconds"]})
    return json.dumps(result)


@component
def export_generator(generator: Input[Model], parent_run_id: str, generator_onnx: Output[Model],
                     export: Output[Artifact]):
    """The generator's ONNX file, checked with onnxruntime against PyTorch."""
    import json

    from genaug.steps import get

    meta = get("export_generator")(generator.path, generator_onnx.path, parent_run_id=parent_run_id)
    generator_onnx.metadata.update(meta["generator"])
    export.metadata.update(meta)
    with open(export.path, "w") as f:
        json.dump(meta, f)


@component
def export_classifier(classifier_real: Input[Model], classifier_augmented: Input[Model], data: Input[Dataset],
                      options: Input[Artifact], parent_run_id: str, classifier_onnx: Output[Model],
                      classifier_int8_onnx: Output[Model], export: Output[Artifact]):
    """The better classifier's ONNX file (by validation accuracy), checked with onnxruntime,
    and its INT8 file, calibrated on the run's training images."""
    import json

    from genaug.params import load_options
    from genaug.steps import get

    run = load_options(options.path)
    meta = get("export_classifier")(classifier_real.path, classifier_augmented.path, data.path, classifier_onnx.path,
                                    classifier_int8_onnx.path, parent_run_id=parent_run_id,
                                    classifier=run.classifier, seed=run.seed)
    classifier_onnx.metadata.update(meta["classifier"])
    classifier_int8_onnx.metadata.update(meta["classifier_int8"])
    export.metadata.update(meta)
    with open(export.path, "w") as f:
        json.dump(meta, f)


@component
def promote_generator(data: Input[Dataset], classifier_real: Input[Model], generator_onnx: Input[Model],
                      export: Input[Artifact], options: Input[Artifact], pipeline_run_id: str,
                      parent_run_id: str, decisions: Output[Artifact], verdict: Output[Markdown]):
    """Serve the generator if its label fidelity (judged by the classifier trained on real
    data) passes the gates; record the decision in the ledger. A generator no better than its
    champion leaves the champion serving, and the verdict says so."""
    from genaug.steps.promote import promote_task

    promote_task("generator", data, generator_onnx, export, options, pipeline_run_id, parent_run_id, decisions,
                 verdict, classifier_real)


@component
def promote_classifier(data: Input[Dataset], classifier_onnx: Input[Model], classifier_int8_onnx: Input[Model],
                       export: Input[Artifact], options: Input[Artifact], pipeline_run_id: str, parent_run_id: str,
                       decisions: Output[Artifact], verdict: Output[Markdown]):
    """Serve the classifier if its test accuracy passes the gates, then its INT8 file as
    <dataset>-classifier-int8 if the classifier was promoted and INT8 keeps its accuracy
    within half a point; record each decision in the ledger. A classifier no better than its
    champion leaves the champion serving."""
    from genaug.steps.promote import promote_task

    promote_task("classifier", data, classifier_onnx, export, options, pipeline_run_id, parent_run_id, decisions,
                 verdict, int8_onnx=classifier_int8_onnx)


@component
def report(options: Input[Artifact], run: Input[Artifact], data: Input[Dataset], generator: Input[Model],
           synthetic: Input[Dataset], classifier_real: Input[Model], classifier_augmented: Input[Model],
           classifier_synthetic: Input[Model], evaluation: Input[Artifact], generator_metrics: Input[Artifact],
           generator_export: Input[Artifact], classifier_export: Input[Artifact],
           generator_decision: Input[Artifact], classifier_decision: Input[Artifact],
           summary: Output[Artifact], table: Output[Markdown]):
    """summary.json for the run, and the same figures as a table in the KFP UI."""
    import json

    from genaug.params import load_options
    from genaug.steps import get
    from genaug.steps.report import table as as_table

    def load(artifact):
        with open(artifact.path) as f:
            return json.load(f)

    # KFP metadata turns every number into a float; files written by the steps keep types.
    config = load_options(options.path)
    ev = {**load(evaluation), "seconds": evaluation.metadata["seconds"]}
    steps = {"resolve_config": {"seconds": options.metadata["seconds"]}, "start_tracking": dict(run.metadata),
             "prepare_data": dict(data.metadata), "train_generator": dict(generator.metadata),
             "synthesize": dict(synthetic.metadata), "train_classifier_real": dict(classifier_real.metadata),
             "train_classifier_augmented": dict(classifier_augmented.metadata),
             "train_classifier_synthetic": dict(classifier_synthetic.metadata), "evaluate": ev,
             "evaluate_generator": {**load(generator_metrics), "seconds": generator_metrics.metadata["seconds"]},
             "export_generator": load(generator_export), "export_classifier": load(classifier_export),
             "promote_generator": load(generator_decision), "promote_classifier": load(classifier_decision)}
    artifacts = {name: art.uri for name, art in (
        ("data", data), ("generator", generator), ("synthetic", synthetic), ("classifier_real", classifier_real),
        ("classifier_augmented", classifier_augmented), ("classifier_synthetic", classifier_synthetic),
        ("evaluation", evaluation), ("generator_metrics", generator_metrics),
        ("generator_export", generator_export), ("classifier_export", classifier_export),
        ("generator_decision", generator_decision), ("classifier_decision", classifier_decision))}
    result = get("report")(config.parameters(), steps, artifacts, summary.path, config=config.as_dict())
    summary.metadata.update({k: result[k] for k in ("accuracy_real", "accuracy_augmented", "accuracy_delta")})
    with open(table.path, "w") as f:
        f.write("```\n" + as_table(result) + "\n```\n")


@component
def record_final_status(pipeline_run_id: str, status: dsl.PipelineTaskFinalStatus, nodes: int = 1,
                        run_uid: str = ""):
    """The exit handler: tag the MLflow runs with how the pipeline run ended, also on failure;
    with NODES > 1, delete the run's TrainJob unless the run succeeded."""
    from genaug.steps import get

    get("final_status")(pipeline_run_id, status.state, status.error_message or "", nodes=nodes, run_uid=run_uid)
