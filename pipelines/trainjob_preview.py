"""The TrainJob that a run with NODES > 1 submits, printed as YAML, without a cluster:

    python -m pipelines.trainjob_preview --nodes 2 --gpus-per-node 8 [--generator ddim --profile full ...]

Built as the pipeline's train-generator-trainjob task builds it (genaug.steps.
train_generator_trainjob), from the compiled-in settings (components/settings.py, the
GENAUG_* environment) and the run's resolved parameters. The run id and namespace stand in
for the ones KFP gives the task; the data hash stands in for the staged dataset's.
"""

from __future__ import annotations

import argparse
import sys

from genaug.params import ParamError, add_arguments, resolve


def preview(params: dict, nodes: int, gpus_per_node: int, namespace: str = "kubeflow-user-example-com",
            run_id: str = "genaug-2pxk7", runtime: str = "", timeout_h: float = 0.0, gpu_resource: str = "") -> dict:
    """The TrainJob object (a plain dict, as the API receives it)."""
    from components import settings
    from genaug.deploy.trainjob import train_job
    from genaug.steps import handoff
    from genaug.steps.train_generator_trainjob import job_name, node_command, request_for
    from pipelines import placement

    run = resolve(params)
    name = job_name(run_id)
    command = node_command(handoff.prefix(name), "<sha256 of the staged dataset>", "<MLflow parent run id>", run)
    job = {**placement.trainjob_settings(), "gpu_resource": gpu_resource or settings.ACCELERATOR_TYPE}
    request = request_for(name, namespace, command, nodes, gpus_per_node, runtime or settings.TRAINER_RUNTIME,
                          timeout_h or settings.TRAINJOB_TIMEOUT_H, job)
    return train_job(request).to_dict()


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--namespace", default="kubeflow-user-example-com")
    args = vars(parser.parse_args(argv))
    nodes, gpus, namespace = args.pop("nodes"), args.pop("gpus_per_node"), args.pop("namespace")
    try:
        job = preview(args, nodes, gpus, namespace)
    except (ParamError, ValueError) as err:
        print(f"genaug: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump(job, sort_keys=False, width=120))
    return 0


if __name__ == "__main__":
    sys.exit(main())
