r"""The parametrized KFP v2 pipeline: real data -> generator -> synthetic data ->
classifiers on real, on real+synthetic and on synthetic only -> evaluation -> ONNX ->
promotion -> summary.

Which task feeds which:

    validate_params -> start_tracking (the MLflow parent run), data_version
    data_version -> prepare_data (cached by dataset, profile, fraction and data version)
    prepare_data -> train_generator, train_classifier(real)
    train_generator -> synthesize, evaluate_generator (FID, KID, precision/recall), export_generator
    synthesize -> train_classifier(real + synthetic), train_classifier(synthetic only: CAS)
    the three classifiers and the synthetic set -> evaluate
    export_generator, train_classifier(real) (the judge of label fidelity) -> promote_generator
    train_classifier(real), train_classifier(real + synthetic) -> export_classifier -> promote_classifier
    all of them -> report (summary.json)

All of it inside an exit handler: record_final_status runs last, also when a step fails,
and marks the run's MLflow runs with how it ended.
"""

from kfp import dsl

from components import settings, steps
from pipelines import placement
from genaug.params import RunParams

DEFAULTS = RunParams()


@dsl.pipeline(
    name="genaug",
    description="Does adding generator samples to the training set improve the classifier? "
                "Trains a class-conditional generator, synthesizes ratio * n_real labelled images, "
                "trains the classifier on real and on real+synthetic data, compares test accuracy, "
                "and promotes models that pass their gates to Triton.",
)
def genaug_pipeline(
    dataset: str = DEFAULTS.dataset,
    generator: str = DEFAULTS.generator,
    classifier: str = DEFAULTS.classifier,
    profile: str = DEFAULTS.profile,
    seed: int = DEFAULTS.seed,
    ratio: float = DEFAULTS.ratio,
    margin: float = DEFAULTS.margin,
    floor: float = DEFAULTS.floor,
    sample_steps: int = DEFAULTS.sample_steps,
    eta: float = DEFAULTS.eta,
    guidance: float = DEFAULTS.guidance,
    fraction: float = DEFAULTS.fraction,
    data_version: str = DEFAULTS.data_version,
    accelerator_type: str = settings.ACCELERATOR_TYPE,
    accelerator_count: int = settings.ACCELERATOR_COUNT,
):
    """One run: generator, synthetic set, classifiers on real / real+synthetic / synthetic.

    Args:
        dataset: fashion_mnist, cifar10 or mnist.
        generator: vanilla_gan, dcgan, wgan_gp, ddpm or ddim (class-conditional).
        classifier: shallow_mlp, deep_mlp, cnn or transfer (ResNet-18; meant for GPUs).
        profile: smoke (seconds), quick (minutes on a CPU) or full (paper-scale, GPU).
        seed: fixes initialisation, data order and generator noise; an integer >= 0.
        ratio: synthetic images per real one, r = n_synthetic / n_real, in (0, 10].
        margin: promotion: a candidate must beat the champion by more than this, in [0, 1].
        floor: promotion: the least test accuracy (classifier) or label fidelity (generator) to serve.
        sample_steps: diffusion only: K sampling steps, as synthesized and as served; 0 = the profile's.
        eta: ddim only: 0 deterministic, 1 DDPM-like noise; -1 = the profile's.
        guidance: diffusion only: classifier-free guidance scale; -1 = the profile's.
        fraction: share of the real training images to use, in (0, 1]; below 1 the small-data regime.
        data_version: "latest" (the raw files as they are now, fingerprinted) or a pinned label; prepare_data is cached by it.
        accelerator_type: the GPU resource the heavy steps request (Kubernetes resource name).
        accelerator_count: GPUs per heavy step.
    """
    final = steps.record_final_status(pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
    final.set_display_name("record final status in MLflow")
    with dsl.ExitHandler(final, name="genaug run"):
        checked = steps.validate_params(dataset=dataset, generator=generator, classifier=classifier, profile=profile,
                                        seed=seed, ratio=ratio, margin=margin, floor=floor, sample_steps=sample_steps,
                                        eta=eta, guidance=guidance, fraction=fraction,
                                        data_version=data_version)
        checked.set_display_name("validate parameters")
        run = steps.start_tracking(dataset=dataset, generator=generator, classifier=classifier, profile=profile,
                                   seed=seed, ratio=ratio, pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
        run.after(checked)
        run.set_display_name("start MLflow run")
        parent = run.outputs["Output"]
        version = steps.data_version(dataset=dataset, requested=data_version).after(checked)
        version.set_display_name("data version")
        data = steps.prepare_data(dataset=dataset, profile=profile, fraction=fraction, data_version=version.output)
        data.set_display_name("prepare data")
        gen = steps.train_generator(data=data.outputs["data"], generator=generator, profile=profile, seed=seed,
                                    parent_run_id=parent, sample_steps=sample_steps, eta=eta,
                                    guidance=guidance).set_display_name("train generator")
        synth = steps.synthesize(model=gen.outputs["model"], data=data.outputs["data"], ratio=ratio, seed=seed,
                                 parent_run_id=parent)
        clf_real = steps.train_classifier(data=data.outputs["data"], classifier=classifier, profile=profile,
                                          seed=seed, ratio=ratio, parent_run_id=parent)
        clf_real.set_display_name("classifier on real data")
        clf_aug = steps.train_classifier(data=data.outputs["data"], synthetic=synth.outputs["synthetic"],
                                         classifier=classifier, profile=profile, seed=seed, ratio=ratio,
                                         parent_run_id=parent)
        clf_aug.set_display_name("classifier on real + synthetic")
        clf_synth = steps.train_classifier(data=data.outputs["data"], synthetic=synth.outputs["synthetic"],
                                           synthetic_only=True, classifier=classifier, profile=profile, seed=seed,
                                           ratio=ratio, parent_run_id=parent)
        clf_synth.set_display_name("classifier on synthetic only (CAS)")
        quality = steps.evaluate_generator(data=data.outputs["data"], generator=gen.outputs["model"],
                                           profile=profile, parent_run_id=parent)
        quality.set_display_name("generator metrics (FID, KID, precision/recall)")
        ev = steps.evaluate(data=data.outputs["data"], classifier_real=clf_real.outputs["model"],
                            classifier_augmented=clf_aug.outputs["model"],
                            classifier_synthetic=clf_synth.outputs["model"], synthetic=synth.outputs["synthetic"],
                            parent_run_id=parent)
        # The generator is exported and promoted as soon as it (and, for the promotion, the
        # classifier that judges it) exists: beside synthesis, not after every classifier.
        gen_onnx = steps.export_generator(generator=gen.outputs["model"], parent_run_id=parent)
        gen_onnx.set_display_name("export generator to ONNX")
        clf_onnx = steps.export_classifier(classifier_real=clf_real.outputs["model"],
                                           classifier_augmented=clf_aug.outputs["model"], parent_run_id=parent)
        clf_onnx.set_display_name("export classifier to ONNX")
        gen_promoted = steps.promote_generator(
            data=data.outputs["data"], classifier_real=clf_real.outputs["model"],
            generator_onnx=gen_onnx.outputs["generator_onnx"], export=gen_onnx.outputs["export"], margin=margin,
            floor=floor, pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, parent_run_id=parent)
        gen_promoted.set_display_name("promote generator to Triton")
        clf_promoted = steps.promote_classifier(
            data=data.outputs["data"], classifier_onnx=clf_onnx.outputs["classifier_onnx"],
            export=clf_onnx.outputs["export"], margin=margin, floor=floor,
            pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, parent_run_id=parent)
        clf_promoted.set_display_name("promote classifier to Triton")
        # The summary is the report task's "summary" artifact: KFP allows no pipeline output
        # from inside an exit handler (pipelines/run_local.py finds it in the pipeline root).
        steps.report(
            params=checked.outputs["params"], run=run.outputs["run"], data=data.outputs["data"],
            generator=gen.outputs["model"], synthetic=synth.outputs["synthetic"],
            classifier_real=clf_real.outputs["model"], classifier_augmented=clf_aug.outputs["model"],
            classifier_synthetic=clf_synth.outputs["model"],
            evaluation=ev.outputs["report"], generator_metrics=quality.outputs["report"],
            generator_export=gen_onnx.outputs["export"], classifier_export=clf_onnx.outputs["export"],
            generator_decision=gen_promoted.outputs["decisions"],
            classifier_decision=clf_promoted.outputs["decisions"])
    placement.place_tasks(accelerator_type, accelerator_count)
