r"""The parametrized KFP v2 pipeline: real data -> generator -> synthetic data ->
classifiers on real, on real+synthetic and on synthetic only -> evaluation -> ONNX ->
promotion -> summary.

Which task feeds which:

    resolve_config (run_options.json) -> start_tracking (the MLflow parent run), data_version
    resolve_config's data section, data_version -> prepare_data (cached by both)
    prepare_data -> train_generator, train_classifier(real)
    train_generator (in the pod, or with NODES > 1 as a Kubeflow Trainer TrainJob) -> synthesize, evaluate_generator (FID, KID, precision/recall), export_generator
    synthesize -> train_classifier(real + synthetic), train_classifier(synthetic only: CAS)
    the three classifiers and the synthetic set -> evaluate
    export_generator, train_classifier(real) (the judge of label fidelity) -> promote_generator
    train_classifier(real), train_classifier(real + synthetic) -> export_classifier (FP32 and INT8, calibrated
        on prepare_data's training images) -> promote_classifier (the FP32 file, then the INT8 one)
    all of them -> report (summary.json)

All of it inside an exit handler: record_final_status runs last, also when a step fails,
and marks the run's MLflow runs with how it ended.
"""

from kfp import dsl

from components import settings, steps
from genaug.params import BY_NAME, default, pipeline_docstring
from pipelines import placement

SUMMARY = "One run: generator, synthetic set, classifiers on real / real+synthetic / synthetic."
PLACEMENT = {"accelerator_type": "the GPU resource the heavy steps request (Kubernetes resource name).",
             "accelerator_count": "GPUs per heavy step (per node when nodes > 1).",
             "nodes": "1: the generator trains in the pipeline's pod; more: as a Kubeflow Trainer TrainJob of "
                      "that many nodes (docs/kubeflow.md).",
             "trainer_runtime": "the ClusterTrainingRuntime a TrainJob runs on (nodes > 1).",
             "trainjob_timeout_hours": "how long the pipeline waits for the TrainJob before deleting it."}


def genaug_pipeline(
    dataset: str = default("dataset"),
    generator: str = default("generator"),
    classifier: str = default("classifier"),
    profile: str = default("profile"),
    seed: int = default("seed"),
    ratio: float = default("ratio"),
    margin: float = default("margin"),
    floor: float = default("floor"),
    sample_steps: int = default("sample_steps"),
    eta: float = default("eta"),
    guidance: float = default("guidance"),
    fraction: float = default("fraction"),
    data_version: str = default("data_version"),
    data_source: str = default("data_source"),
    resolution: int = default("resolution"),
    synth: str = default("synth"),
    synth_target: int = default("synth_target"),
    gate_metric: str = default("gate_metric"),
    gan_early_stop: int = default("gan_early_stop"),
    accelerator_type: str = settings.ACCELERATOR_TYPE,
    accelerator_count: int = settings.ACCELERATOR_COUNT,
    nodes: int = settings.NODES,
    trainer_runtime: str = settings.TRAINER_RUNTIME,
    trainjob_timeout_hours: float = settings.TRAINJOB_TIMEOUT_H,
):
    # The run's parameters (genaug.params.PARAMETERS) go to resolve_config as one dict; the
    # signature above is KFP's copy of that list (tests/unit/test_params.py checks they agree).
    parameters = {name: value for name, value in locals().items() if name in BY_NAME}
    final = steps.record_final_status(pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, nodes=nodes,
                                      run_uid=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
    final.set_display_name("record final status in MLflow")
    with dsl.ExitHandler(final, name="genaug run"):
        resolved = steps.resolve_config(parameters=parameters)
        resolved.set_display_name("resolve configuration")
        options = resolved.outputs["options"]
        run = steps.start_tracking(dataset=dataset, generator=generator, classifier=classifier, profile=profile,
                                   seed=seed, ratio=ratio, pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
        run.after(resolved)
        run.set_display_name("start MLflow run")
        parent = run.outputs["Output"]
        # After the MLflow run exists: the version is logged as the run's input (its lineage).
        version = steps.data_version(dataset=dataset, requested=data_version, source=data_source,
                                     parent_run_id=parent).after(resolved)
        version.set_display_name("data version (snapshots DATA_SOURCE first, if given)")
        data = steps.prepare_data(section=resolved.outputs["Output"], data_version=version.output)
        data.set_display_name("prepare data")
        with dsl.If(nodes == 1, name="one node"):
            in_pod = steps.train_generator(data=data.outputs["data"], options=options,
                                           parent_run_id=parent).set_display_name("train generator")
        with dsl.Else(name="several nodes"):
            across = steps.train_generator_trainjob(
                data=data.outputs["data"], options=options, parent_run_id=parent,
                run_uid=dsl.PIPELINE_JOB_ID_PLACEHOLDER, nodes=nodes, gpus_per_node=accelerator_count,
                gpu_resource=accelerator_type, runtime=trainer_runtime, timeout_hours=trainjob_timeout_hours,
                job=placement.trainjob_settings()).set_display_name("train generator (Kubeflow Trainer TrainJob)")
        generator_model = dsl.OneOf(in_pod.outputs["model"], across.outputs["model"])
        synthesized = steps.synthesize(model=generator_model, data=data.outputs["data"], ratio=ratio, seed=seed,
                                       parent_run_id=parent, mode=synth, target=synth_target)
        clf_real = steps.train_classifier(data=data.outputs["data"], options=options, parent_run_id=parent)
        clf_real.set_display_name("classifier on real data")
        clf_aug = steps.train_classifier(data=data.outputs["data"], synthetic=synthesized.outputs["synthetic"],
                                         options=options, parent_run_id=parent)
        clf_aug.set_display_name("classifier on real + synthetic")
        clf_synth = steps.train_classifier(data=data.outputs["data"], synthetic=synthesized.outputs["synthetic"],
                                           synthetic_only=True, options=options, parent_run_id=parent)
        clf_synth.set_display_name("classifier on synthetic only (CAS)")
        quality = steps.evaluate_generator(data=data.outputs["data"], generator=generator_model,
                                           options=options, parent_run_id=parent)
        quality.set_display_name("generator metrics (FID, KID, precision/recall)")
        ev = steps.evaluate(data=data.outputs["data"], classifier_real=clf_real.outputs["model"],
                            classifier_augmented=clf_aug.outputs["model"],
                            classifier_synthetic=clf_synth.outputs["model"], synthetic=synthesized.outputs["synthetic"],
                            parent_run_id=parent)
        # The generator is exported and promoted as soon as it (and, for the promotion, the
        # classifier that judges it) exists: beside synthesis, not after every classifier.
        gen_onnx = steps.export_generator(generator=generator_model, parent_run_id=parent)
        gen_onnx.set_display_name("export generator to ONNX")
        clf_onnx = steps.export_classifier(classifier_real=clf_real.outputs["model"],
                                           classifier_augmented=clf_aug.outputs["model"], data=data.outputs["data"],
                                           options=options, parent_run_id=parent)
        clf_onnx.set_display_name("export classifier to ONNX")
        gen_promoted = steps.promote_generator(
            data=data.outputs["data"], classifier_real=clf_real.outputs["model"],
            generator_onnx=gen_onnx.outputs["generator_onnx"], export=gen_onnx.outputs["export"], options=options,
            pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, parent_run_id=parent)
        gen_promoted.set_display_name("promote generator to Triton")
        clf_promoted = steps.promote_classifier(
            data=data.outputs["data"], classifier_onnx=clf_onnx.outputs["classifier_onnx"],
            classifier_int8_onnx=clf_onnx.outputs["classifier_int8_onnx"], export=clf_onnx.outputs["export"],
            options=options,
            pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, parent_run_id=parent)
        clf_promoted.set_display_name("promote classifier to Triton")
        # The summary is the report task's "summary" artifact: KFP allows no pipeline output
        # from inside an exit handler (pipelines/run_local.py finds it in the pipeline root).
        steps.report(
            options=options, run=run.outputs["run"], data=data.outputs["data"],
            generator=generator_model, synthetic=synthesized.outputs["synthetic"],
            classifier_real=clf_real.outputs["model"], classifier_augmented=clf_aug.outputs["model"],
            classifier_synthetic=clf_synth.outputs["model"],
            evaluation=ev.outputs["report"], generator_metrics=quality.outputs["report"],
            generator_export=gen_onnx.outputs["export"], classifier_export=clf_onnx.outputs["export"],
            generator_decision=gen_promoted.outputs["decisions"],
            classifier_decision=clf_promoted.outputs["decisions"])
    placement.place_tasks(accelerator_type, accelerator_count)


genaug_pipeline.__doc__ = pipeline_docstring(SUMMARY, PLACEMENT)
genaug_pipeline = dsl.pipeline(
    name="genaug",
    description="Does adding generator samples to the training set improve the classifier? "
                "Trains a class-conditional generator, synthesizes ratio * n_real labelled images, "
                "trains the classifier on real and on real+synthetic data, compares test accuracy, "
                "and promotes models that pass their gates to Triton.",
)(genaug_pipeline)
