"""Components of the augmentation experiment (pipelines/experiment_pipeline.py). Each body
calls its genaug.steps function; see components/steps.py for the conventions."""

from typing import List, NamedTuple

from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components.steps import component


@component
def plan_experiment(dataset: str, generator: str, profile: str, ratios: list, seeds: list, classifiers: list,
                    fractions: list, filter_threshold: float, generator_seeds: list, run_parameters: dict,
                    plan: Output[Artifact], options: Output[Artifact]) -> list:
    """Check every list and lay out the flat configuration list (this task's output); the
    resolved parameters and the arms (one per fraction and generator seed) go to ``plan``,
    the arms' RunConfig (run_options.json) to ``options``. Fails the run before any work."""
    import json

    from genaug.steps import get

    resolved = get("plan_experiment")(dataset, generator, profile, ratios, seeds, classifiers, fractions,
                                      filter_threshold, generator_seeds, run_parameters, options.path)
    plan.metadata.update({k: v for k, v in resolved.items() if k not in ("configs", "arms")})
    with open(plan.path, "w") as f:
        json.dump(resolved, f)
    return resolved["configs"]


@component
def experiment_arms(plan: Input[Artifact]) -> list:
    """The arms of the plan (fraction, generator seed), as the first loop's items. A task of
    its own: KFP's local runner loops only over a task's single output."""
    import json

    with open(plan.path) as f:
        return json.load(f)["arms"]


@component
def synthesis_ratio(ratios: list, filter_threshold: float) -> float:
    """Synthetic images per real one that each arm makes: the largest ratio, twice that when
    filtering, so that enough confident images of every class remain."""
    from genaug.experiment.plan import FILTER_OVERSAMPLE

    return max(float(r) for r in ratios) * (FILTER_OVERSAMPLE if filter_threshold > 0 else 1.0)


@component
def parent_run(run: Input[Artifact]) -> str:
    """The MLflow parent run id, read from start_tracking's ``run`` artifact.

    Inside a ParallelFor, KFP's local runner replaces every parameter that comes from a task
    outside the loop with the loop item; artifacts cross intact. So loop bodies get the id
    through this task (on a cluster it costs one small pod per arm).
    """
    with open(run.path) as f:
        return f.read().strip()


@component
def arm_setup(options: Input[Artifact], arm: dict, arm_options: Output[Artifact]) -> NamedTuple(
        "Arm", section=dict, seed=int):
    """An arm (fraction, generator seed): its data section (what its prepare_data is cached
    by: the same for every generator seed of a fraction), its generator seed, and its
    RunConfig with both in (``arm_options``, for the arm's steps)."""
    from collections import namedtuple
    from dataclasses import replace

    from genaug.params import load_options, write_options

    run = load_options(options.path)
    run = replace(run, seed=int(arm["generator_seed"]), data=replace(run.data, fraction=float(arm["fraction"])))
    write_options(run, arm_options.path)
    return namedtuple("Arm", ["section", "seed"])(run.data.task_input(), run.seed)


@component
def fid_reference(options: Input[Artifact], parent_run_id: str) -> dict:
    """The real data's FID reference features, computed once and cached in S3."""
    from genaug.params import load_options
    from genaug.steps import get

    run = load_options(options.path)
    return get("fid_reference")(run.data.dataset, parent_run_id=parent_run_id, version=run.data.version,
                                metrics=run.metrics, data=run.data)


@component
def filter_synthetic(data: Input[Dataset], synthetic: Input[Dataset], threshold: float, ratio: float,
                     options: Input[Artifact], parent_run_id: str, filtered: Output[Dataset]):
    """Keep the synthetic images a real-data classifier assigns to their label with p > threshold."""
    from genaug.params import load_options
    from genaug.steps import get

    run = load_options(options.path)
    meta = get("filter_synthetic")(data.path, synthetic.path, threshold, ratio, filtered.path,
                                   parent_run_id=parent_run_id, classifier=run.classifier, seed=run.seed)
    filtered.metadata.update({"filter": meta["filter"], "n_total": meta["n_total"]})


@component
def bundle_arms(datas: Input[List[Dataset]], synthetics: Input[List[Dataset]], arms: Output[Artifact]):
    """Every arm's real data and synthetic set in one artifact, indexed by fraction and
    generator seed, so that the configurations of one ParallelFor can each find their own."""
    from genaug.steps.bundle_arms import bundle_arms as bundle

    arms.metadata.update(bundle([d.path for d in datas], [s.path for s in synthetics], arms.path))


@component
def run_config(config: dict, arms: Input[Artifact], options: Input[Artifact], run: Input[Artifact],
               model: Output[Model], curves: Output[HTML], scores: Output[Metrics],
               confusion: Output[ClassificationMetrics]) -> str:
    """Train one configuration (classifier, fraction, ratio, seed, generator seed) and score it on the test split.
    ``run`` is start_tracking's artifact (see parent_run for why not the id itself). Returns
    the result as JSON text: KFP parameters cannot carry nulls."""
    import json

    from genaug.params import load_options
    from genaug.steps import get
    from genaug.steps.bundle_arms import arm_paths

    with open(run.path) as f:
        parent_run_id = f.read().strip()
    data_path, synthetic_path = arm_paths(arms.path, config["fraction"], config.get("generator_seed"))
    result = get("run_config")(config, data_path, synthetic_path, model.path, curves.path,
                               parent_run_id=parent_run_id, classifier=load_options(options.path).classifier)
    scores.log_metric("test_accuracy", result["accuracy"])
    scores.log_metric("test_macro_f1", result["macro_f1"])
    with open(scores.path, "w") as f:
        json.dump(scores.metadata, f)
    confusion.log_confusion_matrix(result["classes"], result["confusion_matrix"])
    model.metadata.update({k: result[k] for k in ("name", "accuracy", "mlflow_run_id") if k in result})
    return json.dumps({k: v for k, v in result.items() if k not in ("confusion_matrix", "classes")})


@component
def summarize_experiment(plan: Input[Artifact], results: list, generators: list, parent_run_id: str,
                         summary: Output[Artifact], table: Output[Markdown]) -> str:
    """The result table per classifier, fraction and ratio, with paired 95% intervals.
    results, generators: JSON texts from run_config and evaluate_generator."""
    import json

    from genaug.steps import get

    with open(plan.path) as f:
        params = json.load(f)
    out = get("summarize_experiment")(params, [json.loads(r) for r in results], [json.loads(g) for g in generators],
                                      summary.path, table.path,
                                      parent_run_id=parent_run_id)
    summary.metadata.update({"n_results": len(results)})
    return out["text"]
