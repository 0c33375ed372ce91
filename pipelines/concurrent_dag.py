"""Run a pipeline's independent tasks at the same time in KFP's local runner, each with its
share of the CPU threads.

kfp.local (2.17) executes the tasks of a DAG one after another, so on a 2-core machine the
classifier on real data waits for the generator although neither needs the other. A
cluster runs them side by side; this module does the same locally. It is the only place
that touches kfp.local's internals, and it touches two of them, for the length of one run:

- ``enhanced_dag_orchestrator.run_enhanced_dag``, the runner of every DAG with an exit
  handler or a nested DAG (genaug's), is replaced by ``run_dag``: a task starts as soon as
  every task it depends on has finished, not when all earlier tasks in a topological order
  have. DAGs with dsl.Condition or dsl.ParallelFor are handed back to kfp's own runner.
  Each task still runs through kfp's ``execute_task`` (caching, retries, outputs, logs).
- ``subprocess_task_handler.run_local_subprocess``, which starts a task's process, gets the
  task's thread share added to its environment (OMP_NUM_THREADS and MKL_NUM_THREADS,
  which torch and ONNX Runtime follow). The share comes from a budget of the machine's
  cores: ready tasks split the free threads evenly, a task runs only with at least one,
  and a running task keeps its threads until it ends, so the machine is never
  oversubscribed (on 2 cores that costs more than running one task at a time).

tests/unit/test_concurrent_dag.py fails when either function's signature changes under it,
and runs a real pipeline through both. The compiled YAML is not touched.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import inspect
import os
import threading

from kfp.local import graph_utils, io, status, subprocess_task_handler
from kfp.local.orchestrator import enhanced_dag_orchestrator as kfp_dag
from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
from kfp.pipeline_spec import pipeline_spec_pb2

# The parameters genaug calls or replaces; kfp changing them must fail a test, not a run.
RUN_DAG_PARAMETERS = ("pipeline_resource_name", "dag_component_spec", "executors", "components", "dag_arguments",
                      "pipeline_root", "runner", "unique_pipeline_id", "fail_stack", "parent_io_store")
EXECUTE_TASK_PARAMETERS = ("task_name", "task_spec", "pipeline_resource_name", "components", "executors", "io_store",
                           "pipeline_root", "runner", "unique_pipeline_id", "fail_stack")
SUBPROCESS_PARAMETERS = ("full_command", "env_vars")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_POLL_S = 0.5  # how often a waiting scheduler looks again for threads freed in another DAG

_TRIGGER = pipeline_spec_pb2.PipelineTaskSpec.TriggerPolicy.TriggerStrategy
_task_threads = threading.local()  # .count: this worker thread's task's share


def cores() -> int:
    """CPU threads this process may use (its affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ThreadBudget:
    """The machine's threads, claimed by running tasks and given back when they end."""

    def __init__(self, total: int):
        self.total, self.free = max(1, total), max(1, total)
        self._lock = threading.Lock()

    def claim(self, waiting: int) -> int:
        """Threads for one of ``waiting`` ready tasks: an even share of the free ones, or 0."""
        with self._lock:
            share = self.free // max(1, waiting) or min(self.free, 1)
            self.free -= share
            return share

    def release(self, count: int) -> None:
        with self._lock:
            self.free += count


_budget: ThreadBudget | None = None
_original_run_dag = kfp_dag.run_enhanced_dag
_original_subprocess = subprocess_task_handler.run_local_subprocess


def _subprocess_with_share(full_command, env_vars=None):
    count = getattr(_task_threads, "count", 0)
    if count:
        env_vars = {**(env_vars or {}), **{name: str(count) for name in THREAD_VARIABLES}}
    return _original_subprocess(full_command=full_command, env_vars=env_vars)


def _is_exit_task(spec) -> bool:
    """kfp's own test: ALL_UPSTREAM_TASKS_COMPLETED and a PipelineTaskFinalStatus input."""
    return (spec.trigger_policy.strategy == _TRIGGER.ALL_UPSTREAM_TASKS_COMPLETED
            and any(p.HasField("task_final_status") for p in spec.inputs.parameters.values()))


def _has_control_flow(spec) -> bool:
    return bool(spec.trigger_policy.condition) or spec.WhichOneof("iterator") is not None


def run_dag(pipeline_resource_name, dag_component_spec, executors, components, dag_arguments, pipeline_root,
            runner, unique_pipeline_id, fail_stack, parent_io_store=None):
    """kfp's run_enhanced_dag with independent tasks at the same time: (outputs, status)."""
    tasks = dict(dag_component_spec.dag.tasks)
    if _budget is None or any(_has_control_flow(spec) for spec in tasks.values()):
        return _original_run_dag(pipeline_resource_name, dag_component_spec, executors, components, dag_arguments,
                                 pipeline_root, runner, unique_pipeline_id, fail_stack, parent_io_store)
    store = io.IOStore(parent=parent_io_store)
    arguments = OrchestratorUtils.join_user_inputs_and_defaults(
        dag_arguments=dag_arguments, dag_inputs_spec=dag_component_spec.input_definitions)
    for key, value in arguments.items():
        store.put_parent_input(key, value)
    common = dict(pipeline_resource_name=pipeline_resource_name, components=components, executors=executors,
                  io_store=store, pipeline_root=pipeline_root, runner=runner,
                  unique_pipeline_id=unique_pipeline_id, fail_stack=fail_stack)
    body = {name: spec for name, spec in tasks.items() if not _is_exit_task(spec)}
    failed = _run_body(body, components, common)
    exit_failed = False
    for name, spec in tasks.items():  # exit handlers: after the body, whatever its outcome
        if name not in body:
            exit_failed |= not _finish(name, *_execute(name, spec, 0, common), common)
    if failed or exit_failed:
        return {}, status.Status.FAILURE
    return OrchestratorUtils.get_dag_outputs(dag_outputs_spec=dag_component_spec.dag.outputs, io_store=store), \
        status.Status.SUCCESS


def _execute(name, spec, threads: int, common: dict):
    _task_threads.count = threads
    try:
        return kfp_dag.execute_task(task_name=name, task_spec=spec, **common)
    finally:
        _task_threads.count = 0


def _finish(name, outputs, task_status, common) -> bool:
    """Record a finished task's status and outputs as kfp does; True if it succeeded."""
    ok = task_status == status.Status.SUCCESS
    common["io_store"].put_task_status(name, "SUCCEEDED" if ok else "FAILED")
    if ok:
        for key, value in outputs.items():
            common["io_store"].put_task_output(name, key, value)
    else:
        common["fail_stack"].append(name)
    return ok


def _run_body(body: dict, components: dict, common: dict) -> bool:
    """Run the body's tasks as their dependencies allow; True if any failed or was skipped."""
    order = list(reversed(graph_utils.topological_sort_tasks(body))) if body else []
    pending, done, failed = list(order), set(), set()
    running: dict[futures.Future, tuple[str, int]] = {}
    with futures.ThreadPoolExecutor(max_workers=max(1, len(body)), thread_name_prefix="kfp-task") as pool:
        while pending or running:
            ready = [n for n in pending if all(d in done or d in failed for d in body[n].dependent_tasks)]
            for name in [n for n in ready if any(d in failed for d in body[n].dependent_tasks)
                         and body[n].trigger_policy.strategy != _TRIGGER.ALL_UPSTREAM_TASKS_COMPLETED]:
                pending.remove(name)  # an upstream task failed: skipped, as kfp does
                ready.remove(name)
                failed.add(name)
                common["io_store"].put_task_status(name, "FAILED")
            leaves = [n for n in ready if components[body[n].component_ref.name].WhichOneof("implementation") != "dag"]
            for name in ready:
                threads = _budget.claim(len(leaves)) if name in leaves else 0
                if name in leaves:
                    leaves.remove(name)
                    if threads == 0:
                        continue
                pending.remove(name)
                running[pool.submit(_execute, name, body[name], threads, common)] = (name, threads)
            if not running:
                if not pending:
                    break
                if not any(n in pending for n in ready):
                    raise RuntimeError(f"tasks {pending} wait for tasks that never run; the DAG is malformed")
                threading.Event().wait(_POLL_S)  # every thread is held by a task of another DAG
                continue
            finished, _ = futures.wait(running, timeout=_POLL_S, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                name, threads = running.pop(future)
                _budget.release(threads)
                (done if _finish(name, *future.result(), common) else failed).add(name)
    return bool(failed)


def check_kfp() -> None:
    """Raise if the kfp.local functions this module relies on changed their parameters."""
    for fn, wanted in ((_original_run_dag, RUN_DAG_PARAMETERS), (kfp_dag.execute_task, EXECUTE_TASK_PARAMETERS),
                       (_original_subprocess, SUBPROCESS_PARAMETERS)):
        got = tuple(inspect.signature(fn).parameters)
        if got != wanted:
            raise RuntimeError(f"kfp.local's {fn.__module__}.{fn.__name__} takes {got}, not {wanted}: "
                               "pipelines/concurrent_dag.py must follow it (or run with --parallel 0)")


@contextlib.contextmanager
def concurrent_tasks(threads: int | None = None):
    """Within this block, kfp.local runs independent tasks at the same time, sharing
    ``threads`` (default: this machine's cores)."""
    global _budget
    check_kfp()
    _budget = ThreadBudget(threads or cores())
    kfp_dag.run_enhanced_dag = run_dag
    subprocess_task_handler.run_local_subprocess = _subprocess_with_share
    try:
        yield _budget
    finally:
        kfp_dag.run_enhanced_dag = _original_run_dag
        subprocess_task_handler.run_local_subprocess = _original_subprocess
        _budget = None
