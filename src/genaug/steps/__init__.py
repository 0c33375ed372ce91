"""One module per pipeline step: a plain typed function, runnable without KFP.

``genaug step <name> --arg value ...`` calls the same function from the shell. Modules
are imported on first use, so ``resolve_config`` never waits for torch.
"""

from __future__ import annotations

import importlib

STEP_NAMES = ("resolve_config", "start_tracking", "data_version", "prepare_data", "train_generator", "synthesize",
              "train_classifier", "evaluate", "fid_reference", "evaluate_generator", "export_generator",
              "export_classifier", "promote", "report", "final_status",
              # NODES > 1: the CPU task that runs a TrainJob, and what its nodes run
              "train_generator_trainjob", "train_generator_staged",
              # the augmentation experiment (pipelines/experiment_pipeline.py)
              "plan_experiment", "filter_synthetic", "bundle_arms", "run_config", "summarize_experiment")


def get(name: str):
    """The step function called ``name`` (module genaug.steps.<name>, function <name>)."""
    if name not in STEP_NAMES:
        raise ValueError(f"unknown step {name!r}; choose one of {', '.join(STEP_NAMES)}")
    return getattr(importlib.import_module(f"genaug.steps.{name}"), name)
