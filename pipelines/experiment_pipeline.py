r"""The augmentation experiment as one KFP v2 pipeline: for each real-data fraction and
generator seed (an arm) a generator trained on that fraction, then one ParallelFor over
the flat list of (classifier, fraction, ratio, seed, generator seed) configurations,
collected into one table.

    plan_experiment -> start_tracking -> fid_reference
          |
    ParallelFor arm:  arm_setup -> prepare_data -> train_generator -> synthesize -> filter_synthetic
                                                                                    -> evaluate_generator
          |
    bundle_arms (every arm's data and synthetic set, by fraction)
          |
    ParallelFor configuration:  run_config (train on real / real+synthetic / synthetic, score on test)
          |
    summarize_experiment (mean ± std, paired Δ vs real-only with 95% t-intervals; MLflow, KFP UI)
"""

from kfp import dsl

from components import experiment as exp
from components import settings, steps
from genaug.params import default
from genaug.profiles import PROFILES
from pipelines import placement

QUICK = PROFILES[default("profile")].experiment
# Tasks at once inside each loop. Locally KFP runs at most 2 anyway; on a cluster every
# configuration could run at once, but the arms' GPU generators should not crowd a node.
ARM_PARALLELISM = 2
CONFIG_PARALLELISM = 8


@dsl.pipeline(
    name="genaug-experiment",
    description="Does generator X's data help classifier Y, by how much, and is it significant? Trains one "
                "generator per real-data fraction, then each classifier at each augmentation ratio and seed; "
                "reports mean ± std accuracy and the paired difference against real-only training with a 95% "
                "t-interval over seeds, plus FID, KID, precision/recall and CAS per generator.",
)
def experiment_pipeline(
    dataset: str = default("dataset"),
    generator: str = default("generator"),
    profile: str = default("profile"),
    ratios: list = list(QUICK.ratios),
    seeds: list = list(QUICK.seeds),
    classifiers: list = list(QUICK.classifiers),
    fractions: list = list(QUICK.fractions),
    filter_threshold: float = 0.0,
    generator_seeds: list = list(QUICK.generator_seeds),
    sample_steps: int = default("sample_steps"),
    eta: float = default("eta"),
    guidance: float = default("guidance"),
    data_version: str = default("data_version"),
    gan_early_stop: int = default("gan_early_stop"),
) -> str:
    """The sweep: one generator per fraction, every (classifier, fraction, ratio, seed).

    Args:
        dataset: fashion_mnist, cifar10 or mnist.
        generator: vanilla_gan, dcgan, wgan_gp, ddpm or ddim (class-conditional).
        profile: smoke (seconds), quick (minutes on a CPU) or full (paper-scale, GPU).
        ratios: synthetic images per real one to compare, e.g. [0, 0.25, 0.5, 1]; 0 (real only) is always added.
        seeds: one training per seed, e.g. [0, 1, 2]; augmented runs are paired with real-only of the same seed.
        classifiers: any of shallow_mlp, deep_mlp, cnn, transfer, efficientnet_b0, e.g. ["cnn", "shallow_mlp"].
        fractions: shares of the real training split, e.g. [0.1, 1]; each gets its own generator.
        filter_threshold: 0 keeps every synthetic image; above, keep those a real-data cnn assigns to their label with p > it.
        generator_seeds: one generator per fraction and seed, e.g. [0, 1, 2]; with 2 or more the interval counts the generator's own variance.
        sample_steps: diffusion only: K sampling steps; 0 = the profile's.
        eta: ddim only: 0 deterministic, 1 DDPM-like noise; -1 = the profile's.
        guidance: diffusion only: classifier-free guidance scale; -1 = the profile's.
        data_version: "latest" (the data as it is now, as a version id by content), a version id, or a label; prepare_data is cached by it.
        gan_early_stop: GANs only: 1 keeps each arm's generator of the lowest FID and stops when it no longer improves; 0 trains every step; -1 = the profile's.
    """
    plan = exp.plan_experiment(dataset=dataset, generator=generator, profile=profile, ratios=ratios, seeds=seeds,
                               classifiers=classifiers, fractions=fractions, filter_threshold=filter_threshold,
                               generator_seeds=generator_seeds,
                               run_parameters={"sample_steps": sample_steps, "eta": eta, "guidance": guidance,
                                               "data_version": data_version, "gan_early_stop": gan_early_stop},
                               ).set_display_name("plan experiment")
    options = plan.outputs["options"]
    run = steps.start_tracking(dataset=dataset, generator=generator, classifier="experiment", profile=profile,
                               seed=0, ratio=0.0, pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                               kind="experiment").after(plan)
    run.set_display_name("start MLflow run")
    ref = exp.fid_reference(options=options, parent_run_id=run.outputs["Output"])
    ref.set_display_name("FID reference features")
    # Loop bodies take only pipeline inputs, loop items and artifacts from outside: KFP's
    # local runner replaces any other outside parameter with the loop item (see
    # components.experiment.parent_run). Fractions were checked by plan_experiment.
    arms_list = exp.experiment_arms(plan=plan.outputs["plan"]).set_display_name("arms")
    with dsl.ParallelFor(arms_list.output, parallelism=ARM_PARALLELISM) as arm:
        parent = exp.parent_run(run=run.outputs["run"]).set_display_name("MLflow parent run").output
        ratio = exp.synthesis_ratio(ratios=ratios, filter_threshold=filter_threshold).set_display_name(
            "synthesis ratio").output
        version = steps.data_version(dataset=dataset, requested=data_version, parent_run_id=parent)
        version.set_display_name("data version")
        setup = exp.arm_setup(options=options, arm=arm).set_display_name("arm: data section and generator seed")
        arm_options = setup.outputs["arm_options"]
        data = steps.prepare_data(section=setup.outputs["section"], data_version=version.output)
        gen = steps.train_generator(data=data.outputs["data"], options=arm_options, parent_run_id=parent)
        synth = steps.synthesize(model=gen.outputs["model"], data=data.outputs["data"], ratio=ratio,
                                 seed=setup.outputs["seed"], parent_run_id=parent)
        kept = exp.filter_synthetic(data=data.outputs["data"], synthetic=synth.outputs["synthetic"],
                                    threshold=filter_threshold, ratio=ratio, options=arm_options,
                                    parent_run_id=parent)
        kept.set_display_name("filter synthetic")
        quality = steps.evaluate_generator(data=data.outputs["data"], generator=gen.outputs["model"],
                                           options=arm_options, parent_run_id=parent).after(ref)
        quality.set_display_name("generator metrics")
    arms = exp.bundle_arms(datas=dsl.Collected(data.outputs["data"]),
                           synthetics=dsl.Collected(kept.outputs["filtered"])).set_display_name("bundle arms")
    with dsl.ParallelFor(plan.outputs["Output"], parallelism=CONFIG_PARALLELISM) as config:
        trained = exp.run_config(config=config, arms=arms.outputs["arms"], options=options, run=run.outputs["run"])
        trained.set_display_name("train and score configuration")
    summary = exp.summarize_experiment(plan=plan.outputs["plan"], results=dsl.Collected(trained.outputs["Output"]),
                                       generators=dsl.Collected(quality.outputs["Output"]),
                                       parent_run_id=run.outputs["Output"])
    summary.set_display_name("result table")
    # Compile-time here, not parameters: KFP's local runner cannot resolve a pipeline parameter
    # in the resources of a task inside a ParallelFor (the one-run pipeline has them as parameters).
    placement.place_tasks(settings.ACCELERATOR_TYPE, settings.ACCELERATOR_COUNT)
    return summary.outputs["Output"]
