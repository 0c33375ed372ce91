"""Run the pipeline on a Kubeflow Pipelines cluster, once or on a schedule.

    python -m pipelines.submit run --host URL [--namespace NS] [--wait 1] [run parameters]
    python -m pipelines.submit schedule --host URL --cron "0 0 2 * * *" [--name NAME] [run parameters]
    python -m pipelines.submit unschedule --host URL [--name NAME]

(`make pipeline TARGET=kfp`, `make schedule` and `make unschedule` call these.) Each
compiles genaug.yaml exactly as `make compile` does and uploads it as a version of the
pipeline "genaug" named by the git commit (reused when that version exists), so the KFP
UI shows which code every run ran. Runs go into an experiment (default "genaug").

A scheduled run has the same parameters as a submitted one: data_version "latest", so it
resolves the data's version again (and snapshots DATA_SOURCE first, if given); no task but
prepare_data is cacheable, so it really retrains; and promotion goes through the gates, so
a retrain that is no better leaves the champion serving (the promote step's verdict in the
KFP UI and the MLflow tags say so).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

from genaug.params import BY_NAME, ParamError, add_arguments, pipeline_arguments
from pipelines.compile import BUILD
from pipelines.kfp_connect import KfpConnectionError, check_host, connect

PIPELINE_NAME = "genaug"
PIPELINE_FILE = "genaug.yaml"
TERMINAL = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED", "CANCELLED"}
# KFP's scheduler reads robfig/cron with a seconds field: second minute hour day month weekday.
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-LW#]+$")


class SubmitError(RuntimeError):
    """A request KFP would refuse or that cannot work; the message names the value and the fix."""


def check_cron(expr: str) -> str:
    """``expr`` when it is a 6-field cron expression (seconds first), else SubmitError."""
    fields = (expr or "").split()
    if len(fields) != 6 or not all(_CRON_FIELD.match(f) for f in fields):
        hint = f"; did you mean CRON=\"0 {expr.strip()}\"?" if len(fields) == 5 else ""
        raise SubmitError(f"CRON={expr!r} is not a 6-field cron expression (second minute hour day month "
                          f"weekday), e.g. CRON=\"0 0 2 * * *\" for 02:00 every day{hint}")
    return " ".join(fields)


def _filter(name: str) -> str:
    """KFP's list filter for display_name == name."""
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def version_name(package: Path) -> str:
    """The pipeline version's name: the git commit plus the compiled file's digest. The file
    also depends on settings outside git (GENAUG_IMAGE, GPU_STEPS, GENAUG_K8S_*), so two
    different specs never share a version, while the same spec reuses its version."""
    from pipelines.run_local import git_commit

    commit = os.environ.get("GENAUG_GIT_COMMIT") or git_commit()
    return f"{PIPELINE_NAME}-{commit}-{hashlib.sha256(package.read_bytes()).hexdigest()[:12]}"


def upload(client, package: Path) -> tuple[str, str, str]:
    """(pipeline_id, version_id, version name) of ``package`` as a version of "genaug",
    creating the pipeline on first use and the version unless it exists already."""
    name = version_name(package)
    pipeline_id = client.get_pipeline_id(PIPELINE_NAME)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(package), pipeline_name=PIPELINE_NAME,
                                             description=_description(package)).pipeline_id
    existing = client.list_pipeline_versions(pipeline_id, filter=_filter(name)).pipeline_versions or []
    if existing:
        return pipeline_id, existing[0].pipeline_version_id, name
    version = client.upload_pipeline_version(str(package), pipeline_version_name=name, pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id, name


def _description(package: Path) -> str:
    import yaml

    return next(yaml.safe_load_all(package.read_text()))["pipelineInfo"].get("description", "")[:1000]


def job_source(pipeline_id: str, version_id: str, package: Path, cache: bool) -> dict:
    """What a run or recurring run is made from. With caching on: the uploaded version, as
    compiled (only prepare_data cacheable). Off: the same spec inline with caching off in
    every task; KFP takes a per-run override only for an inline spec, and kfp.Client's own
    override skips tasks inside an exit handler, hence without_cache()."""
    if cache:
        return {"pipeline_id": pipeline_id, "version_id": version_id}
    return {"pipeline_package_path": str(without_cache(package))}


def without_cache(package: Path) -> Path:
    """``package`` with caching off in every task at every depth, next to it as *-nocache.yaml."""
    import yaml

    spec, platform = yaml.safe_load_all(package.read_text())

    def switch_off(dag: dict) -> None:
        for task in dag.get("tasks", {}).values():
            task["cachingOptions"] = {**task.get("cachingOptions", {}), "enableCache": False}

    switch_off(spec["root"]["dag"])
    for component in spec["components"].values():
        if "dag" in component:
            switch_off(component["dag"])
    out = package.with_name(package.stem + "-nocache.yaml")
    out.write_text(yaml.safe_dump_all([spec, platform], sort_keys=True))
    return out


def prepare(args) -> tuple:
    """Connect, compile and upload: (client, package, pipeline_id, version_id, experiment_id)."""
    from pipelines.compile import compile_one

    client = connect(args.host, args.namespace or None)
    package = compile_one(PIPELINE_FILE, Path(args.build_dir) / PIPELINE_FILE)
    pipeline_id, version_id, name = upload(client, package)
    print(f"[genaug] pipeline {PIPELINE_NAME}, version {name}", flush=True)
    experiment = client.create_experiment(args.experiment, namespace=args.namespace or None)
    return client, package, pipeline_id, version_id, experiment.experiment_id


def submit_run(args, params: dict) -> str:
    """Create one run; return its id. Prints the run URL; --wait follows it to the end."""
    client, package, pipeline_id, version_id, experiment_id = prepare(args)
    job = f"{PIPELINE_NAME}-{params['dataset']}-{params['generator']}-{params['profile']}-s{params['seed']}"
    run = client.run_pipeline(experiment_id, job, params=params,
                              service_account=args.service_account or None,
                              **job_source(pipeline_id, version_id, package, bool(args.cache)))
    print(f"[genaug] run URL: {run_url(args.host, run.run_id)}", flush=True)
    print(service_account_line(args.service_account), flush=True)
    return run.run_id


LEAST_PRIVILEGE_ACCOUNT = "genaug-pipeline"  # manifests/base/pipeline-access/rbac.yaml


def service_account_line(account: str) -> str:
    """Which Kubernetes identity the run's pods use, and how to choose genaug's own."""
    if account:
        return f"[genaug] the run's pods use ServiceAccount {account!r}"
    return (f"[genaug] the run's pods use KFP's default ServiceAccount (pipeline-runner, with wide rights); "
            f"`make pipeline TARGET=kfp KFP_SERVICE_ACCOUNT={LEAST_PRIVILEGE_ACCOUNT}` uses genaug's, which holds "
            f"only what KFP needs (kubectl apply -k manifests/base/pipeline-access creates it)")


def run_url(host: str, run_id: str) -> str:
    ui = os.environ.get("KF_PIPELINES_UI_ENDPOINT") or host
    return f"{ui.rstrip('/')}/#/runs/details/{run_id}"


def follow(client, run_id: str, host: str, poll_s: float, timeout_s: float) -> str:
    """Poll the run until it ends, printing each change of state; its final state."""
    t0, last = time.monotonic(), None
    while True:
        run = client.get_run(run_id)
        state = str(run.state or "PENDING").upper()
        if state != last:
            print(f"[genaug] {time.monotonic() - t0:7.0f} s  run {run_id}: {state}", flush=True)
            last = state
        if state in TERMINAL:
            if state != "SUCCEEDED" and getattr(run, "error", None):
                print(f"[genaug] error: {run.error}", file=sys.stderr, flush=True)
            return state
        if time.monotonic() - t0 > timeout_s:
            raise SubmitError(f"run {run_id} is still {state} after {timeout_s:g} s (WAIT_TIMEOUT); it goes on "
                              f"running on the cluster: {run_url(host, run_id)}")
        time.sleep(poll_s)


def schedule_name(args, params: dict) -> str:
    return args.name or f"{PIPELINE_NAME}-retrain-{params['dataset']}-{params['generator']}-{params['classifier']}"


def recurring_runs(client, experiment_id: str, name: str) -> list:
    found = client.list_recurring_runs(experiment_id=experiment_id, filter=_filter(name)).recurring_runs
    return list(found or [])


def schedule(args, params: dict) -> str:
    """Create (or replace) the recurring run ``schedule_name``; return its id."""
    cron = check_cron(args.cron)
    client, package, pipeline_id, version_id, experiment_id = prepare(args)
    name = schedule_name(args, params)
    for old in recurring_runs(client, experiment_id, name):
        client.delete_recurring_run(old.recurring_run_id)
        print(f"[genaug] replaced the recurring run {name} ({old.recurring_run_id})", flush=True)
    # No catch-up: after a pause, one retrain on the latest data, not one per missed day;
    # max_concurrency 1: two retrains never race to promote.
    recurring = client.create_recurring_run(
        experiment_id, name, description=f"genaug retraining: {json.dumps(params)}",
        cron_expression=cron, max_concurrency=1, no_catchup=True, params=params, enabled=True,
        service_account=args.service_account or None,
        **job_source(pipeline_id, version_id, package, bool(args.cache)))
    print(f"[genaug] recurring run {name} ({recurring.recurring_run_id}): cron {cron!r}, no catch-up, "
          f"max concurrency 1", flush=True)
    print(service_account_line(args.service_account), flush=True)
    ui = (os.environ.get("KF_PIPELINES_UI_ENDPOINT") or args.host).rstrip("/")
    print(f"[genaug] {ui}/#/recurringrun/details/{recurring.recurring_run_id}", flush=True)
    return recurring.recurring_run_id


def unschedule(args, name: str) -> int:
    """Delete the recurring runs called ``name``; how many there were."""
    client = connect(args.host, args.namespace or None)
    try:
        experiment = client.get_experiment(experiment_name=args.experiment, namespace=args.namespace or None)
    except ValueError:
        print(f"[genaug] no experiment {args.experiment!r}, so no recurring run {name} to remove", flush=True)
        return 0
    found = recurring_runs(client, experiment.experiment_id, name)
    for old in found:
        client.delete_recurring_run(old.recurring_run_id)
        print(f"[genaug] removed the recurring run {name} ({old.recurring_run_id})", flush=True)
    if not found:
        print(f"[genaug] no recurring run {name} in experiment {args.experiment!r}; nothing removed", flush=True)
    return len(found)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for command in ("run", "schedule", "unschedule"):
        c = sub.add_parser(command)
        c.add_argument("--host", default=os.environ.get("KFP_HOST", ""), help="KFP_HOST: the KFP API/UI URL")
        c.add_argument("--namespace", default=os.environ.get("KFP_NAMESPACE", ""),
                       help="your profile namespace (multi-user Kubeflow)")
        c.add_argument("--experiment", default="genaug", help="the KFP experiment the runs go into")
        c.add_argument("--nodes", type=int, default=1,
                       help="NODES: >1 trains the generator as a Kubeflow Trainer TrainJob of that many nodes")
        c.add_argument("--service_account", default=os.environ.get("KFP_SERVICE_ACCOUNT", ""),
                       help="the runs' Kubernetes identity, e.g. genaug-pipeline (manifests/); default: KFP's")
        c.add_argument("--name", default="", help="the recurring run's name; default genaug-retrain-<data>-<gen>-<clf>")
        c.add_argument("--build_dir", default=str(BUILD), help="where the uploaded YAML is compiled to")
        c.add_argument("--cache", type=int, choices=(0, 1), default=1,
                       help="0: the run takes nothing from KFP's cache, prepare_data included")
        add_arguments(c)
        if command == "run":
            c.add_argument("--wait", type=int, choices=(0, 1), default=0, help="1: follow the run to its end")
            c.add_argument("--wait_timeout", type=float, default=6 * 3600, help="seconds")
            c.add_argument("--poll_seconds", type=float, default=10.0)
        if command == "schedule":
            c.add_argument("--cron", default="0 0 2 * * *", help="6 fields: second minute hour day month weekday")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        # Resolved here, as the run's first task will resolve them: a bad value fails now.
        params = pipeline_arguments({k: getattr(args, k) for k in BY_NAME})
        if args.nodes < 1:
            raise SubmitError(f"NODES={args.nodes}: give 1 (train in the pipeline's pod) or more (a Kubeflow "
                              "Trainer TrainJob of that many nodes)")
        params["nodes"] = args.nodes
        check_host(args.host)
        if args.command == "schedule":
            check_cron(args.cron)
        if args.command == "unschedule":
            unschedule(args, schedule_name(args, params))
        elif args.command == "schedule":
            schedule(args, params)
        else:
            run_id = submit_run(args, params)
            if args.wait:
                client = connect(args.host, args.namespace or None)
                state = follow(client, run_id, args.host, args.poll_seconds, args.wait_timeout)
                return 0 if state == "SUCCEEDED" else 1
    except ParamError as err:
        print(f"genaug: invalid parameters: {err}", file=sys.stderr)
        return 2
    except (KfpConnectionError, SubmitError) as err:
        print(f"genaug: {err}", file=sys.stderr)
        return 2 if isinstance(err, SubmitError) else 1
    except Exception as err:  # the KFP API refused a request: its status and its reason
        from kfp_server_api.exceptions import ApiException

        if not isinstance(err, ApiException):
            raise
        print(f"genaug: KFP at {args.host} refused the request: HTTP {err.status} {err.reason}: "
              f"{(err.body or '')[:500]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
