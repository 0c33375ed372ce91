"""One training process of the DDP tests: run alone (world size 1) or under torchrun
(``python -m torch.distributed.run --standalone --nproc_per_node=N tests/ddp_worker.py KIND OUT``).
Each rank saves its weights and history to OUT/rank<r>.pt."""

import sys
from pathlib import Path

import numpy as np
import torch

from genaug import accel as accel_mod
from genaug import models
from genaug.diffusion import Diffusion
from genaug.sections import ClassifierConfig, DiffusionConfig, GanConfig
from genaug.train import distributed
from genaug.train.classifier import train_classifier
from genaug.train.diffusion import train_diffusion
from genaug.train.gan import train_gan
from genaug.train.gan_losses import LOSSES

STEPS, BATCH = int(__import__("os").environ.get("DDP_STEPS", 20)), 16


def _data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 256).astype(np.int64)
    x = (rng.integers(0, 20, (256, 1, 28, 28)) + y[:, None, None, None] * 23).astype(np.uint8)
    return x, y


def _checkpointer():
    """A Checkpointer in the stack's S3 when GENAUG_TEST_CHECKPOINT names a key (every 2 steps)."""
    import os

    from genaug.services.store import Store
    from genaug.train.checkpoints import Checkpointer

    key = os.environ.get("GENAUG_TEST_CHECKPOINT")
    return Checkpointer(Store(), key, 2) if key else None


def diffusion(world: distributed.World) -> dict:
    x, y = _data()
    torch.manual_seed(0)
    # No dropout: its masks are drawn inside the network, per rank (genaug.train.distributed).
    net = models.build_generator("ddim", shape=(1, 28, 28), num_classes=10, base_channels=8,
                                 channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(14,), dropout=0.0)
    cfg = DiffusionConfig(steps=STEPS, batch=BATCH, lr=1e-3, warmup=5, ema_decay=0.9, log_every=5)
    ema, history = train_diffusion(net, Diffusion.from_schedule("linear", 100), x, y, cfg,
                                   accel_mod.pick("cpu"), seed=0, checkpointer=_checkpointer(), mirror=True,
                                   world=world)
    probe = torch.Generator().manual_seed(1)
    x, t, labels = torch.randn(8, 1, 28, 28, generator=probe), torch.arange(0, 80, 10), torch.arange(8)
    with torch.no_grad():
        predicted = {"model": net.eval()(x, t, labels), "ema": ema.eval()(x, t, labels)}
    return {"model": net.state_dict(), "ema": ema.state_dict(), "history": history, "predicted": predicted}


def without_batchnorm(*modules: torch.nn.Module) -> None:
    """Replace every BatchNorm by the identity (GENAUG_TEST_NO_BN=1): with it, a rank
    normalises by its own rows on gloo, so only without it does world size 2 equal 1."""
    for module in modules:
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
                setattr(module, name, torch.nn.Identity())
            else:
                without_batchnorm(child)


def _maybe_without_batchnorm(*modules) -> None:
    if __import__("os").environ.get("GENAUG_TEST_NO_BN") == "1":
        without_batchnorm(*modules)


def gan(world: distributed.World, generator: str) -> dict:
    x, y = _data()
    torch.manual_seed(0)
    G, D = models.build_gan(generator, shape=(1, 28, 28), num_classes=10, z_dim=8, width=4)
    _maybe_without_batchnorm(G, D)
    loss = LOSSES[generator]()
    # Generator steps: WGAN-GP's Adam without momentum (beta1 = 0) turns the all-reduce's rounding
    # into differences that double every few steps (1e-9 after 25 critic steps, 1e-3 after 100),
    # so it runs 5 generator steps (25 critic steps), the others 20.
    g_steps = 5 if loss.n_critic > 1 else STEPS
    cfg = GanConfig(steps=g_steps * loss.n_critic, batch=BATCH, z_dim=8, log_every=loss.n_critic * 5)
    history = train_gan(G, D, x, y, cfg, accel_mod.pick("cpu"), 10, seed=0, loss=loss, world=world)
    probe = torch.Generator().manual_seed(1)
    z, labels = torch.randn(8, 8, generator=probe), torch.arange(8)
    with torch.no_grad():
        predicted = {"G": G.eval()(labels, z), "D": D.eval()(x_probe(), labels)}
    return {"G": G.state_dict(), "D": D.state_dict(), "history": history, "predicted": predicted}


def gan_early_stop(world: distributed.World) -> dict:
    """dcgan with early stopping: rank 0 measures FID (the stand-in network against the data's
    own features), every rank stops where its value says. GENAUG_TEST_MEASURE_FAILS=1: the
    measurement fails on rank 0."""
    import os

    from genaug.metrics import feature_net
    from genaug.metrics.features import extract
    from genaug.metrics.fid_probe import FidProbe
    from genaug.metrics.reference import Reference
    from genaug.train.early_stop import EarlyStop, fixed_sample_fid

    x, y = _data()
    torch.manual_seed(0)
    G, D = models.build_gan("dcgan", shape=(1, 28, 28), num_classes=10, z_dim=8, width=4)
    measure = None
    if world.main:
        net = feature_net.stand_in()
        probe = FidProbe(net, "clean", Reference(extract(x[:64], net, "clean")[0], y[:64], "ddp test", False))
        measure = fixed_sample_fid(probe, 8, 10, 32, accel_mod.pick("cpu"))
        if os.environ.get("GENAUG_TEST_MEASURE_FAILS") == "1":
            measure = lambda G: 1 / 0  # noqa: E731
    early = EarlyStop(every=2, patience=1, measure=measure)
    cfg = GanConfig(steps=STEPS, batch=BATCH, z_dim=8, log_every=5)
    history = train_gan(G, D, x, y, cfg, accel_mod.pick("cpu"), 10, seed=0, world=world, early_stop=early)
    return {"G": G.state_dict(), "history": history, "early_stop": early.record()}


def x_probe() -> torch.Tensor:
    return torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1


def classifier(world: distributed.World) -> dict:
    x, y = _data()
    torch.manual_seed(0)
    # No dropout: its masks are drawn inside the network, per rank.
    net = models.build_classifier("cnn", shape=(1, 28, 28), num_classes=10, width=8, dropout=0.0)
    _maybe_without_batchnorm(net)
    cfg = ClassifierConfig(epochs=2, patience=2, batch=BATCH, lr=5e-3)
    history = train_classifier(net, (x[:192], y[:192]), (x[192:], y[192:]), cfg, accel_mod.pick("cpu"), 0,
                               crop_pad=2, world=world)
    with torch.no_grad():
        predicted = {"model": net.eval()(x_probe() * 0.5 + 0.5)}
    return {"model": net.state_dict(), "history": history, "predicted": predicted}


def rank_dies(world: distributed.World) -> dict:
    """Rank 1 dies (exit 3) after the first collective; rank 0 goes on training and waits for it."""
    torch.distributed.barrier()
    if world.rank == 1:
        print("rank 1: exiting with 3", file=sys.stderr, flush=True)
        __import__("os")._exit(3)
    return diffusion(world)


KINDS = {"diffusion": diffusion, "rank_dies": rank_dies, "classifier": classifier, "gan_early_stop": gan_early_stop,
         **{g: (lambda world, g=g: gan(world, g)) for g in ("dcgan", "wgan_gp", "vanilla_gan")}}


def main(kind: str, out: str) -> None:
    world = distributed.World.from_env()
    distributed.init(world, torch.device("cpu"))
    try:
        result = KINDS[kind](world)
        torch.save(result, Path(out) / f"rank{world.rank}.pt")
        from genaug.steps.gpus import write_result

        write_result({"rank": world.rank, "kind": kind})
    finally:
        distributed.leave()


if __name__ == "__main__":
    main(*sys.argv[1:3])
