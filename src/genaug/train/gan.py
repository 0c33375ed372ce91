"""Adversarial training for the class-conditional GANs, and sampling from their generators."""

from __future__ import annotations

import numpy as np
import torch

from genaug.accel import Accel
from genaug.data.batches import Batches
from genaug.sections import GanConfig
from genaug.train.checkpoints import restore, rng_state
from genaug.train.distributed import World, after_step, step_generator
from genaug.train.early_stop import EarlyStop
from genaug.train.gan_losses import NonSaturating
from genaug.train.progress import bar


def train_gan(G: torch.nn.Module, D: torch.nn.Module, x: np.ndarray, y: np.ndarray, cfg: GanConfig,
              accel: Accel, num_classes: int, seed: int, loss=None, checkpointer=None, snapshot=None,
              world: World = World(), early_stop: EarlyStop | None = None) -> dict[str, list]:
    """Train G and D in place on images x (uint8 [N, C, H, W]) with labels y (int64 [N]).

    loss: an objective from genaug.train.gan_losses (default: non-saturating).
    checkpointer: a genaug.train.checkpoints.Checkpointer, or None. With one, training
    resumes from its saved state (weights, optimizers, RNG, step) and saves every
    ``checkpointer.every`` generator steps; a resumed run ends bit-identical on the CPU
    to one that was never interrupted. snapshot(g_step, G): called at the generator
    steps in ``snapshot.steps`` (a set), e.g. to log a sample grid; it must not touch
    the global RNG. Returns a history of means over each log window:
    step (critic updates so far), d_loss, g_loss and the objective's balance statistics.
    world: this process's rank (genaug.train.distributed). Every rank draws z, the fake
    labels and the objective's draws for the whole global batch of cfg.batch from a generator
    keyed by (seed, critic step), keeps its rows, and averages its gradients with the others'
    after each backward; BatchNorm buffers are rank 0's after every step, and statistics
    are per rank unless the backend synchronises them (NCCL).
    early_stop: with one, rank 0 measures G when ``early_stop.due`` and every rank takes its
    value (World.from_main), so the ranks stop at the same step; training ends after
    ``early_stop.patience`` measurements without improvement, and G ends holding the weights
    of the best measurement, not the last. Its state is part of the checkpoint.
    """
    loss = loss or NonSaturating()
    G, D = (world.sync_batchnorm(accel.prepare(m)).train() for m in (G, D))
    fused = accel.device.type == "cuda"
    opt_g = torch.optim.Adam(G.parameters(), lr=loss.lr, betas=loss.betas, fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), lr=loss.lr, betas=loss.betas, fused=fused)
    history: dict[str, list] = {"step": []}
    window: dict[str, torch.Tensor] = {}
    n_window, start = 0, 0
    state = checkpointer.load() if checkpointer else None
    if state is not None:
        restore(state, {"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d}, accel.device)
        history, window, n_window, start = state["history"], state["window"], state["n_window"], state["g_step"]
        if early_stop is not None:
            early_stop.load_state_dict(state["early_stop"])
    share = min(cfg.batch, len(y)) // world.size
    if world.batch_per_gpu and world.batch_per_gpu < share:
        raise ValueError(f"GENAUG_BATCH_PER_GPU={world.batch_per_gpu} is below this rank's {share} images per step, "
                         "and the GANs do not accumulate gradients (their critic and generator steps share "
                         "one batch); unset it, or give the step more GPUs or a smaller GAN batch")
    g_steps = max(1, cfg.steps // loss.n_critic)
    data = Batches(x, y, cfg.batch, accel.device, seed).forever(start_step=start * loss.n_critic)
    grid_steps = getattr(snapshot, "steps", set())
    # With one critic update per G update, G's step reuses the fakes D just saw (as the
    # DCGAN reference loop does): one G forward per step instead of two, ~1.2x faster.
    reuse = loss.n_critic == 1
    # A run that stopped early is finished: resuming it trains no further.
    end = start if early_stop is not None and early_stop.stopped else g_steps
    with bar(g_steps, "train_generator (G steps)", "step", disable=not world.main) as progress:
        progress.update(start)
        for g_step in range(start + 1, end + 1):
            for i in range(loss.n_critic):
                xb, yb = next(data)  # the global batch; every draw below is for all of it
                rows, n = world.rows(len(yb)), len(yb)
                keyed = step_generator(accel.device, seed, (g_step - 1) * loss.n_critic + i + 1)
                real = accel.images(xb[rows]) * 2.0 - 1.0
                z = torch.randn(n, cfg.z_dim, device=accel.device, generator=keyed)[rows]
                fake_y = (yb if getattr(loss, "same_labels", False) else
                          torch.randint(0, num_classes, (n,), device=accel.device, generator=keyed))[rows]
                extra = {k: v[rows] for k, v in loss.draws(n, keyed, accel.device).items()}
                yb = yb[rows]
                with accel.autocast():
                    if reuse:
                        fake = G(fake_y, z)
                    else:
                        with torch.no_grad():
                            fake = G(fake_y, z)
                    d_loss, stats = loss.critic(D, real, yb, fake.detach(), fake_y, **extra)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                world.average_gradients(D)
                opt_d.step()
                # Summed on the device; read once per log window, not once per step.
                # The ranks' means, every step, so that every rank's window holds the same sums
                # (rank 0's checkpoint gives them back to every rank on resume).
                for k, v in {"d_loss": d_loss.detach(), **{k: v.detach() for k, v in stats.items()}}.items():
                    window[k] = window.get(k, 0.0) + world.mean(v.float())
                n_window += 1
            if not reuse:  # the generator step's own draws, from the last critic step's generator
                z = torch.randn(n, cfg.z_dim, device=accel.device, generator=keyed)[rows]
                fake_y = torch.randint(0, num_classes, (n,), device=accel.device, generator=keyed)[rows]
                with accel.autocast():
                    fake = G(fake_y, z)
            with accel.autocast():
                g_loss = loss.generator(D, fake, fake_y)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            world.average_gradients(G)
            opt_g.step()
            world.broadcast_buffers(G, D)
            after_step(world, G, D)
            window["g_loss"] = window.get("g_loss", 0.0) + world.mean(g_loss.detach().float()) * loss.n_critic
            progress.update()
            stop = (early_stop is not None and early_stop.due(g_step, g_step == g_steps)
                    and early_stop.observe(g_step, world.from_main(lambda: early_stop.timed_measure(G)), G))
            last = g_step == g_steps or stop
            step = g_step * loss.n_critic
            if step % cfg.log_every < loss.n_critic or last:
                history["step"].append(step)
                for k, v in window.items():
                    history.setdefault(k, []).append(float(v) / n_window)
                progress.set_postfix({k: f"{history[k][-1]:.3f}" for k in ("d_loss", "g_loss", "d_real", "d_fake")})
                window, n_window = {}, 0
            if g_step in grid_steps and world.main:
                snapshot(g_step, G)
            if checkpointer and (g_step % checkpointer.every == 0 or last):
                world.check_same(G, D)
                if world.main:
                    checkpointer.save({
                        "step": step, "g_step": g_step, "G": G.state_dict(), "D": D.state_dict(),
                        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), **rng_state(accel.device),
                        "history": history, "window": window, "n_window": n_window,
                        "early_stop": early_stop.state_dict() if early_stop is not None else None})
                world.barrier()
            if stop:
                break
    if early_stop is not None:
        early_stop.keep_best(G)
    return history
