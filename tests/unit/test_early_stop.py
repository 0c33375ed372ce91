"""GAN early stopping by FID (genaug.train.early_stop): the decision, its state in a checkpoint,
and the GAN_EARLY_STOP parameter. The step against real MLflow and S3, resume included, is in
tests/integration/test_early_stop.py; two ranks in tests/unit/test_ddp.py."""

import io
import json
import re

import pytest
import torch

from genaug.params import ParamError, resolve, resolve_pipeline_arguments
from genaug.profiles import PROFILES
from genaug.sections import EARLY_STOP_FIELDS
from genaug.train.early_stop import EarlyStop


def stopping_point(fids: list[float], patience: int) -> int | None:
    """The index of the measurement at which training must stop, computed from the curve
    alone: the first with ``patience`` measurements in a row since the last new minimum."""
    best, since = float("inf"), 0
    for i, fid in enumerate(fids):
        best, since = (fid, 0) if fid < best else (best, since + 1)
        if since >= patience:
            return i
    return None


class Net(torch.nn.Module):
    """A network whose one weight records the generator step it was "trained" to."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def at(self, step: int) -> "Net":
        with torch.no_grad():
            self.w.fill_(step)
        return self


def feed(early: EarlyStop, net: Net, fids: list[float], first_step: int = 1) -> list[int]:
    """Observe ``fids`` at steps first_step, first_step + every, ...; the steps measured."""
    seen = []
    for i, fid in enumerate(fids):
        step = (first_step + i) * early.every
        seen.append(step)
        if early.observe(step, fid, net.at(step)):
            break
    return seen


@pytest.mark.parametrize("fids,patience", [
    ([9.0, 7.0, 8.0, 7.0, 6.5, 6.9, 7.2, 6.0, 5.0], 3),   # an equal value is no improvement
    ([9.0, 7.0, 8.0, 7.0, 6.5, 6.9, 7.2, 6.0, 5.0], 2),
    ([4.0, 5.0, 3.0, 3.5, 2.0], 1),
    ([5.0, 4.0, 3.0, 2.0], 2),                              # never stops: kept = the last
])
def test_stops_after_patience_measurements_without_improvement_and_keeps_the_lowest(fids, patience):
    early, net = EarlyStop(every=10, patience=patience), Net()
    seen = feed(early, net, fids)
    stop = stopping_point(fids, patience)
    assert seen == [10 * (i + 1) for i in range(len(fids) if stop is None else stop + 1)]
    assert early.stopped_at == (None if stop is None else seen[-1])
    measured = fids[:len(seen)]
    best = measured.index(min(measured))  # the first of equal minima
    assert (early.best_step, early.best_fid) == (seen[best], measured[best])
    early.keep_best(net.at(seen[-1]))
    assert net.w.item() == seen[best]  # the weights of the best measurement, not the last
    assert early.record()["curve"] == {"step": seen, "fid": measured}


def test_a_measurement_that_is_not_a_number_is_never_the_best():
    early, net = EarlyStop(every=1, patience=2), Net()
    feed(early, net, [3.0, float("nan"), float("nan")])
    assert (early.best_step, early.stopped_at) == (1, 3)


def test_the_state_survives_a_checkpoint_and_the_resumed_decision_is_the_same():
    """Interrupted after 4 of 7 measurements and resumed from its checkpoint's state, the
    decision and the kept weights are those of the run that was never interrupted."""
    fids = [9.0, 6.0, 7.0, 6.5, 6.8, 6.1, 7.5]
    whole, net = EarlyStop(every=5, patience=3), Net()
    feed(whole, net, fids)
    first = EarlyStop(every=5, patience=3)
    feed(first, Net(), fids[:4])
    buffer = io.BytesIO()
    torch.save({"early_stop": first.state_dict()}, buffer)
    buffer.seek(0)
    logged = []
    resumed = EarlyStop(every=5, patience=3, log=lambda step, fid: logged.append((step, fid)))
    resumed.load_state_dict(torch.load(buffer, weights_only=True)["early_stop"])  # as Checkpointer.load reads it
    assert logged == [(5, 9.0), (10, 6.0), (15, 7.0), (20, 6.5)]  # the resumed run's record starts whole
    feed(resumed, Net(), fids[4:], first_step=5)
    for a, b in ((whole, resumed),):
        assert (a.steps, a.fids, a.best_step, a.best_fid, a.since_best, a.stopped_at) == \
            (b.steps, b.fids, b.best_step, b.best_fid, b.since_best, b.stopped_at)
    kept = Net()
    resumed.keep_best(kept)
    assert kept.w.item() == 10 and resumed.stopped_at == 25


def test_only_rank_0_measures():
    with pytest.raises(RuntimeError, match="only rank 0 measures"):
        EarlyStop(every=1, patience=1).timed_measure(Net())


def test_the_parameter_reaches_the_gan_section_and_the_profiles_decide_when_unset():
    assert resolve({"gan_early_stop": "1"}).gan.early_stop is True
    assert resolve({"profile": "full", "gan_early_stop": "0"}).gan.early_stop is False
    for name in ("smoke", "quick", "full"):
        assert resolve({"profile": name}).gan.early_stop is (name == "full")
        gan = PROFILES[name].gan
        assert gan.early_stop_every >= 1 and gan.early_stop_patience >= 1 and gan.early_stop_samples >= 2
    # KFP's stand-in for "the profile's" (-1), as a task receives it, as text.
    assert resolve_pipeline_arguments({"profile": "full", "gan_early_stop": "-1.0"}).gan.early_stop is True
    assert resolve({"generator": "ddim", "gan_early_stop": "0"}).gan is None  # off is off, for any generator


@pytest.mark.parametrize("params,message", [
    ({"generator": "ddim", "gan_early_stop": "1"},
     "gan_early_stop 1 applies to the GANs only: ddim is a diffusion model, which trains all its steps and "
     "samples with its EMA weights; drop GAN_EARLY_STOP or choose a GAN, e.g. GEN=dcgan"),
    ({"gan_early_stop": "2"}, "gan_early_stop 2 must be 0 (train every step, keep the last generator) or 1"),
    ({"gan_early_stop": "yes"}, "gan_early_stop 'yes' must be an integer, e.g. GAN_EARLY_STOP=1"),
])
def test_early_stopping_where_it_cannot_work_is_refused_before_any_work(params, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        resolve(params)


def test_the_checkpoint_key_of_a_run_without_early_stopping_is_what_it_was():
    """Off, the early-stopping fields are left out of the key: runs keep resuming their
    checkpoints. On, they are in it: a run never resumes one that lacks the best-so-far state."""
    from dataclasses import replace

    gan = PROFILES["quick"].gan
    before = {"steps": 1500, "batch": 64, "width": 32, "z_dim": 64, "log_every": 250, "checkpoint_every": 250,
              "max_grids": 8}  # quick's GanConfig.as_dict() before early stopping existed
    assert gan.training_key() == before
    on = replace(gan, early_stop=True).training_key()
    assert set(on) == set(before) | set(EARLY_STOP_FIELDS) and on["early_stop"] is True


def test_the_summary_shows_steps_and_counts_as_integers_after_kfp_metadata():
    """KFP hands the step's record back with every number a float; the summary and its line
    show generator steps and counts as the integers they are (the quick run printed 'step
    1500.0 ... 6.0 measurements')."""
    from genaug.steps.report import early_stop_line, early_stop_summary

    early = EarlyStop(every=250, patience=3)
    for step, fid in ((250, 200.0), (500, 150.0), (750, 160.0)):
        early.observe(step, fid, torch.nn.Linear(1, 1))
    as_kfp = json.loads(json.dumps({**early.record(), "samples": 500, "n_reference": 2000}),
                        parse_int=float)
    summary = early_stop_summary(as_kfp)
    assert summary["curve"]["step"] == [250, 500, 750] and summary["best_fid"] == 150.0
    assert all(type(summary[k]) is int for k in ("best_step", "measurements", "samples", "every", "patience"))
    assert early_stop_line(summary) == ("early stopping: kept generator step 500 (FID 150 on 500 fixed samples, "
                                        "3 measurements), trained every step")
    assert early_stop_summary(None) is None
