"""GAN early stopping by FID against the session's real MLflow and S3: the generator the step
hands on is the one of the lowest FID that MLflow logged, training stops after the patience's
measurements without improvement, and a run interrupted and resumed from its S3 checkpoint
keeps its best so far and takes the uninterrupted run's decision."""

import uuid
from dataclasses import replace

import mlflow
import numpy as np
import pytest
import torch

from genaug import accel, catalog, generators, models
from genaug.data.sources import load_raw
from genaug.metrics import feature_net
from genaug.metrics.features import extract
from genaug.metrics.fid_probe import FidProbe
from genaug.metrics.reference import Reference, reference
from genaug.sections import GanConfig
from genaug.services import tracking
from genaug.services.store import Store
from genaug.steps import get
from genaug.train.checkpoints import Checkpointer
from genaug.train.early_stop import EarlyStop, fixed_sample_fid
from genaug.train.gan import train_gan
from tests.configs import smoke
from tests.unit.test_early_stop import stopping_point


@pytest.fixture
def on_stack(stack, tiny_fmnist, monkeypatch):
    """The tiny Fashion-MNIST with the stack's environment back (tiny_fmnist's offline_env removes it)."""
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    return tiny_fmnist


def test_the_step_keeps_the_generator_of_the_lowest_logged_fid_and_stops_after_the_patience(on_stack, tmp_path):
    config = smoke(generator="dcgan", gan_early_stop=1)
    gan = replace(config.gan, early_stop_every=1, early_stop_patience=3, early_stop_samples=50)
    data, out = str(tmp_path / "data.npz"), str(tmp_path / "gen.pt")
    get("prepare_data")(data, data=config.data)
    parent = tracking.start_pipeline_run({"dataset": "fashion_mnist"}, {"genaug.pipeline_run_id": "early-stop"})
    meta = get("train_generator")(data, out, parent_run_id=parent, generator="dcgan", seed=0, gan=gan,
                                  metrics=config.metrics)
    record, client = meta["early_stop"], mlflow.MlflowClient()
    logged = sorted((m.step, m.value) for m in client.get_metric_history(meta["mlflow_run_id"], "early_stop_fid"))
    steps, fids = [s for s, _ in logged], [f for _, f in logged]
    assert record["curve"] == {"step": steps, "fid": fids}  # MLflow holds the curve, at generator steps
    stop = stopping_point(fids, gan.early_stop_patience)
    assert stop is not None and record["stopped_at"] == steps[stop] == steps[-1] < gan.steps
    assert record["best_step"] == steps[int(np.argmin(fids))] and record["best_fid"] == min(fids)
    run = client.get_run(meta["mlflow_run_id"]).data
    assert run.metrics["early_stop_best_step"] == record["best_step"] and run.params["early_stop_patience"] == "3"
    # The generator the step wrote is the kept one: measured again on the same fixed sample, it
    # gives the best FID, not the last one's.
    module, ckpt = generators.load(out)
    assert ckpt["meta"]["early_stop"] == record
    spec, net = catalog.dataset("fashion_mnist"), feature_net.stand_in()
    probe = FidProbe(net, "clean", reference(spec, load_raw(spec, store=Store()), config.metrics.fid_samples,
                                             "clean", net, Store()))
    measure = fixed_sample_fid(probe, gan.z_dim, spec.num_classes, gan.early_stop_samples, accel.pick("cpu"))
    again = measure(module.net)
    assert again == pytest.approx(record["best_fid"], rel=1e-9, abs=0) and again != fids[-1]


class Interrupted(Exception):
    pass


class Interrupt:
    """A snapshot hook (train_gan's ``snapshot``) that stops the run at one generator step, before
    that step's checkpoint: as a killed process would, with the last checkpoint a step earlier."""

    def __init__(self, at: int | None):
        self.steps = {at} if at else set()

    def __call__(self, g_step, G):
        raise Interrupted(f"interrupted at generator step {g_step}")


def test_a_resumed_run_keeps_its_best_so_far_and_takes_the_same_decision(on_stack):
    images, labels = on_stack["train"]
    x, y = images[:, None], labels.astype(np.int64)  # uint8 [N, 1, 28, 28], int64 [N]
    net, acc = feature_net.stand_in(), accel.pick("cpu")
    probe = FidProbe(net, "clean", Reference(extract(x[:100], net, "clean")[0], y[:100], "test", False))
    cfg = GanConfig(steps=40, batch=16, width=4, z_dim=8, log_every=5)
    key = f"early-stop-test-{uuid.uuid4().hex[:8]}"

    def train(name: str, interrupt_at: int | None = None) -> tuple[torch.nn.Module, EarlyStop]:
        torch.manual_seed(0)
        G, D = models.build_gan("dcgan", shape=(1, 28, 28), num_classes=10, z_dim=8, width=4)
        early = EarlyStop(every=1, patience=3, measure=fixed_sample_fid(probe, 8, 10, 32, acc))
        train_gan(G, D, x, y, cfg, acc, 10, seed=0, checkpointer=Checkpointer(Store(), f"{key}-{name}", 1),
                  snapshot=Interrupt(interrupt_at), early_stop=early)
        return G, early

    G_whole, whole = train("whole")
    assert whole.stopped and whole.stopped_at - 1 > whole.best_step  # a measurement between best and stop
    with pytest.raises(Interrupted):
        train("interrupted", interrupt_at=whole.stopped_at - 1)
    G_resumed, resumed = train("interrupted")  # resumes from the checkpoint a step before the interruption
    assert Checkpointer(Store(), f"{key}-interrupted", 1).load()["early_stop"]["stopped_at"] == whole.stopped_at
    for a, b in ((whole, resumed),):
        assert (a.steps, a.fids, a.best_step, a.best_fid, a.stopped_at) == \
            (b.steps, b.fids, b.best_step, b.best_fid, b.stopped_at)
    for name, tensor in G_whole.state_dict().items():
        assert torch.equal(tensor, G_resumed.state_dict()[name]), f"G.{name} differs after resume"
    # A run that stopped is finished: a rerun resumes it, trains nothing and hands on the same G.
    G_again, again = train("whole")
    assert again.steps == whole.steps and all(torch.equal(t, G_again.state_dict()[k])
                                              for k, t in G_whole.state_dict().items())
