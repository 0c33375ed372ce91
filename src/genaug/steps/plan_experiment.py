"""The experiment's first step: check its lists and lay out the flat configuration list."""

from __future__ import annotations

import time

from genaug.experiment.plan import arms, configurations, validate
from genaug.params import resolve_pipeline_arguments, write_options


def plan_experiment(dataset: str, generator: str, profile: str, ratios: list, seeds: list, classifiers: list,
                    fractions: list, filter_threshold: float = 0.0, generator_seeds: list | None = None,
                    run_parameters: dict | None = None, options_path: str = "") -> dict:
    """Validate (ParamError names every bad value) and return the resolved parameters,
    ``configs`` (one dict per classifier training), ``arms`` (one per fraction and generator
    seed: data, generator, synthetic set) and ``synthesis_ratio`` (synthetic images per real one).

    run_parameters: genaug.experiment.plan.RUN_PARAMETERS as the pipeline got them. With
    ``options_path``, the arms' RunConfig (the first generator seed as its seed, which each
    arm replaces with its own; genaug.params.resolve) is written there as run_options.json."""
    t0 = time.perf_counter()
    p = validate(dataset, generator, profile, ratios, seeds, classifiers, fractions, filter_threshold,
                 generator_seeds)
    config = resolve_pipeline_arguments({"dataset": dataset, "generator": generator, "profile": profile,
                                         "seed": p.generator_seed, **(run_parameters or {})})
    if options_path:
        write_options(config, options_path)
    configs = configurations(p)
    return {**p.as_dict(), "configs": configs, "n_configs": len(configs), "arms": arms(p),
            "synthesis_ratio": p.synthesis_ratio, "seconds": round(time.perf_counter() - t0, 3)}
