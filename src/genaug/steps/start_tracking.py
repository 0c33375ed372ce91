"""Open the MLflow parent run that every later step logs under."""

from __future__ import annotations

import os

from genaug.services import tracking
from genaug.steps.timing import timed_step


@timed_step
def start_tracking(dataset: str, generator: str, classifier: str, profile: str, seed: int, ratio: float,
                   pipeline_run_id: str = "", git_commit: str = "", kind: str = "run") -> dict:
    """Create the parent run, tagged with the pipeline run id, dataset, generator, seed and
    git commit (the data hash is tagged by prepare_data once it is known). kind:
    "run" (one pipeline run) or "experiment" (a sweep; classifier lists the classifiers)."""
    params = {"dataset": dataset, "generator": generator, "classifier": classifier, "profile": profile,
              "seed": seed, "ratio": ratio}
    commit = git_commit or os.environ.get("GENAUG_GIT_COMMIT", "unknown")
    tags = {"genaug.pipeline_run_id": pipeline_run_id, "genaug.dataset": dataset,
            "genaug.generator": generator, "genaug.seed": seed, "genaug.git_commit": commit,
            "mlflow.source.git.commit": commit, "genaug.kind": kind}
    name = f"experiment-{dataset}-{generator}-{profile}" if kind == "experiment" else None
    run_id = tracking.start_pipeline_run(params, tags, name)
    return {"parent_run_id": run_id, "tracking_uri": tracking.tracking_uri(),
            "experiment": tracking.EXPERIMENT, "pipeline_run_id": pipeline_run_id}
