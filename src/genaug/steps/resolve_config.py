"""The run's configuration, resolved once before any data loads or any training starts."""

from __future__ import annotations

from genaug.params import resolve_pipeline_arguments, write_options
from genaug.steps.timing import timed_step


@timed_step
def resolve_config(parameters: dict, out_path: str) -> dict:
    """Resolve the pipeline's ``parameters`` (genaug.params.resolve; KFP's stand-ins for "the
    profile's" read as unset) and write the RunConfig to ``out_path`` (run_options.json).
    Returns {"config": the RunConfig as a dict, "parameters": the parameters as resolved};
    raises genaug.params.ParamError naming every bad value."""
    config = resolve_pipeline_arguments(parameters)
    write_options(config, out_path)
    return {"config": config.as_dict(), "parameters": config.parameters()}
