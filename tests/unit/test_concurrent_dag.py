"""The local runner's concurrency (pipelines/concurrent_dag.py): independent tasks overlap,
each with its share of the threads; dependents wait; a failure skips only its dependents
and the exit handler still runs. Through kfp's real local runner and real subprocesses."""

import json

import pytest
from kfp import dsl, local

from pipelines import concurrent_dag


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def timed(name: str, seconds: float, fail: bool, record: dsl.Output[dsl.Artifact]):
    import json
    import os
    import time

    from genaug import threads

    # The fewest threads it was given while it ran: 1 once the other task runs too. (Its share
    # at the end alone is 2 for whichever ends last, as soon as the other has handed its back.)
    start, fewest = time.time(), threads.share()
    while time.time() < start + seconds:
        time.sleep(0.1)
        fewest = min(fewest, threads.share())
    if fail:
        raise ValueError(f"task {name} fails on purpose")
    with open(record.path, "w") as f:  # the first started with 2
        json.dump({"name": name, "start": start, "end": time.time(), "threads": fewest,
                   "started_with": os.environ.get("OMP_NUM_THREADS")}, f)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def joined(a: dsl.Input[dsl.Artifact], b: dsl.Input[dsl.Artifact], record: dsl.Output[dsl.Artifact]):
    import json
    import os
    import time

    with open(a.path) as f, open(b.path) as g:
        parts = [json.load(f), json.load(g)]
    out = {"start": time.time(), "threads": os.environ.get("OMP_NUM_THREADS"), "parts": parts}
    with open(record.path, "w") as f:
        json.dump(out, f)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def at_exit(marker: str, status: dsl.PipelineTaskFinalStatus):
    with open(marker, "w") as f:
        f.write(status.state)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def watching(seconds: float, record: dsl.Output[dsl.Artifact]):
    """Record the thread share genaug.threads reports, as a long step's progress bar sees it."""
    import json
    import time

    from genaug import threads

    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        seen.append(threads.follow())
        time.sleep(0.25)
    import torch

    with open(record.path, "w") as f:
        json.dump({"seen": seen, "torch": torch.get_num_threads()}, f)


def _pipeline(fail_a: bool):
    @dsl.pipeline(name="concurrency")
    def pipeline(marker: str):
        with dsl.ExitHandler(at_exit(marker=marker)):
            # Long enough that each reads its share while the other runs, even when a loaded
            # machine takes seconds to start the second task's process (3 s once was not).
            a = timed(name="a", seconds=6.0, fail=fail_a)
            b = timed(name="b", seconds=6.0, fail=False)
            joined(a=a.outputs["record"], b=b.outputs["record"])

    return pipeline


@pytest.fixture
def local_runner(tmp_path):
    import builtins

    saved = builtins.print  # kfp.local swaps print per task and may leave its own installed
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    yield tmp_path
    builtins.print = saved


def test_the_kfp_functions_it_relies_on_have_not_changed(monkeypatch):
    concurrent_dag.check_kfp()  # fails the day kfp.local changes a signature under us
    monkeypatch.setattr(concurrent_dag, "_original_subprocess", lambda command, env=None: 0)
    with pytest.raises(RuntimeError, match="must follow it"):
        concurrent_dag.check_kfp()


def test_independent_tasks_overlap_with_a_share_of_the_threads_each(local_runner):
    marker = local_runner / "exit"
    with concurrent_dag.concurrent_tasks(threads=2) as budget:
        _pipeline(fail_a=False)(marker=str(marker))
    out = json.loads(next((local_runner / "root").glob("*/joined/record")).read_text())
    a, b = out["parts"]
    assert a["start"] < b["end"] and b["start"] < a["end"], "a and b did not run at the same time"
    assert a["threads"] == b["threads"] == 1            # two running tasks split 2 threads
    assert sorted([a["started_with"], b["started_with"]]) == ["1", "2"]
    assert out["threads"] == "2" and out["start"] >= max(a["end"], b["end"])  # alone, after both
    assert budget.free_slots == 2 and not budget.running and marker.read_text() == "SUCCEEDED"


def test_a_task_left_alone_takes_up_the_threads_the_other_gave_back(local_runner):
    @dsl.pipeline(name="shares")
    def pipeline(marker: str):
        with dsl.ExitHandler(at_exit(marker=marker)):  # as genaug's: kfp's enhanced DAG runner
            watching(seconds=8.0)
            timed(name="short", seconds=1.0, fail=False)

    with concurrent_dag.concurrent_tasks(threads=2):
        pipeline(marker=str(local_runner / "exit"))
    record = json.loads(next((local_runner / "root").glob("*/watching/record")).read_text())
    assert record["seen"][0] == 1 and record["seen"][-1] == 2 and record["torch"] == 2, record


def test_a_failure_skips_its_dependents_and_the_exit_handler_still_runs(local_runner):
    marker = local_runner / "exit"
    with concurrent_dag.concurrent_tasks(threads=2), pytest.raises(RuntimeError, match="timed"):
        _pipeline(fail_a=True)(marker=str(marker))
    assert marker.read_text() == "FAILED"
    assert list((local_runner / "root").glob("*/timed-2/record")), "the independent task b did not finish"
    assert not list((local_runner / "root").glob("*/joined/record")), "the dependent task ran"


def test_kfp_is_left_as_it_was():
    from kfp.local import subprocess_task_handler
    from kfp.local.orchestrator import enhanced_dag_orchestrator

    with concurrent_dag.concurrent_tasks(threads=2):
        assert enhanced_dag_orchestrator.run_enhanced_dag is concurrent_dag.run_dag
    assert enhanced_dag_orchestrator.run_enhanced_dag is concurrent_dag._original_run_dag
    assert subprocess_task_handler.run_local_subprocess is concurrent_dag._original_subprocess


@pytest.mark.parametrize("nodes", [1, 2])
def test_a_one_of_of_artifacts_is_the_output_of_the_branch_that_ran(local_runner, nodes):
    """As the genaug pipeline's NODES branches: kfp.local alone refuses this pipeline."""
    @dsl.pipeline(name="branches")
    def pipeline(marker: str, nodes: int):
        with dsl.ExitHandler(at_exit(marker=marker)):
            with dsl.If(nodes == 1):
                one = timed(name="pod", seconds=0.0, fail=False)
            with dsl.Else():
                many = timed(name="trainjob", seconds=0.0, fail=False)
            chosen = dsl.OneOf(one.outputs["record"], many.outputs["record"])
            joined(a=chosen, b=chosen)

    with concurrent_dag.one_of_outputs(), concurrent_dag.concurrent_tasks(threads=2):
        pipeline(marker=str(local_runner / "exit"), nodes=nodes)
    out = json.loads(next((local_runner / "root").glob("*/joined/record")).read_text())
    assert [part["name"] for part in out["parts"]] == (["pod"] * 2 if nodes == 1 else ["trainjob"] * 2)
