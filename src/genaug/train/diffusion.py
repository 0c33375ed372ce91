"""Training a class-conditional denoising network, with EMA weights and resumable state."""

from __future__ import annotations

import copy

import numpy as np
import torch

from genaug.accel import Accel
from genaug.data.batches import Batches
from genaug.diffusion import Diffusion
from genaug.sections import DiffusionConfig
from genaug.train.checkpoints import restore, rng_state
from genaug.train.distributed import World, after_step, step_generator
from genaug.train.progress import bar


class EMA:
    """An exponential moving average of a model's weights: the weights that sample.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) after n updates, so early in a
    short run the average is not dominated by the random initialisation.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ours = [p for p in self.model.parameters()]
        theirs = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ours, theirs, 1.0 - decay)
        for mine, other in zip(self.model.buffers(), model.buffers()):
            mine.copy_(other)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def train_diffusion(model: torch.nn.Module, process: Diffusion, x: np.ndarray, y: np.ndarray,
                    cfg: DiffusionConfig, accel: Accel, seed: int, checkpointer=None,
                    snapshot=None, mirror: bool = False, world: World = World()
                    ) -> tuple[torch.nn.Module, dict[str, list]]:
    """Train ``model`` in place to predict the noise in x (uint8 [N, C, H, W]) with labels
    y (int64 [N]) under ``process``'s loss (with its label dropout for guidance).

    AdamW with linear warm-up then a constant rate, gradient norm clipped at
    cfg.grad_clip, EMA weights updated every step. checkpointer: as in train_gan; the
    state holds model, EMA, optimizer, schedule, RNG and step, so a resumed run ends
    bit-identical on the CPU. snapshot(step, ema_model): called at the steps
    ``snapshot.steps`` (a set), e.g. to log a sample grid. mirror: random left-right flips
    of the training images (for datasets where a mirrored image is as likely).
    world: this process's rank among the training processes (genaug.train.distributed):
    each rank trains on its rows of every global batch of cfg.batch, with the draws of the
    whole batch, so W ranks take the step one process takes; rank 0 alone saves checkpoints
    and calls ``snapshot``.
    Returns (the EMA model, history of step, loss and grad_norm means per log window).
    """
    model = accel.prepare(model).train()
    process = process.to(accel.device)
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0,
                            fused=accel.device.type == "cuda")
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup)))
    history: dict[str, list] = {"step": [], "loss": [], "grad_norm": [], "lr": []}
    window = {"loss": torch.zeros((), device=accel.device), "grad_norm": torch.zeros((), device=accel.device)}
    n_window, start = 0, 0
    state = checkpointer.load() if checkpointer else None
    if state is not None:
        restore(state, {"model": model, "ema": ema, "opt": opt, "schedule": schedule}, accel.device)
        history, n_window, start = state["history"], state["n_window"], state["step"]
        window = {k: v.to(accel.device) for k, v in state["window"].items()}
    data = Batches(x, y, cfg.batch, accel.device, seed).forever(start_step=start)
    # The loss calls the (DDP-wrapped) compiled forward; state is saved from ``model``, the
    # same weights.
    ddp = world.wrap(model)
    forward = accel.compiled(ddp)
    grid_steps = getattr(snapshot, "steps", set())
    with bar(cfg.steps, "train_generator", "step", disable=not world.main) as progress:
        progress.update(start)
        for step in range(start + 1, cfg.steps + 1):
            xb, yb = next(data)  # the global batch; every draw below is for all of it
            keyed = step_generator(accel.device, seed, step)
            flip = torch.rand(len(yb), device=accel.device, generator=keyed) < 0.5 if mirror else None
            draws = process.draws(xb.shape, accel.device, generator=keyed)
            parts = world.parts(len(yb))
            share = sum(p.stop - p.start for p in parts)
            opt.zero_grad(set_to_none=True)
            loss = torch.zeros((), device=accel.device)
            for j, part in enumerate(parts):  # one piece unless GENAUG_BATCH_PER_GPU splits the share
                x0 = accel.images(xb[part]) * 2.0 - 1.0
                if mirror:
                    x0 = torch.where(flip[part][:, None, None, None], x0.flip(3), x0)
                with world.accumulating(ddp, last=j == len(parts) - 1):
                    with accel.autocast():
                        piece = process.loss(forward, x0, yb[part], snr_gamma=cfg.snr_gamma, draws=draws.rows(part))
                    piece = piece * ((part.stop - part.start) / share) if len(parts) > 1 else piece
                    piece.backward()
                loss = loss + piece.detach()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            schedule.step()
            ema.update(model)
            after_step(world, model, ema.model)
            # Summed on the device; read once per log window, not once per step.
            # The ranks' mean, every step: each rank's window then holds the same sums, which
            # rank 0's checkpoint gives back to every rank on resume.
            window["loss"] += world.mean(loss.detach().float())
            window["grad_norm"] += grad_norm.detach().float()
            n_window += 1
            progress.update()
            if step % cfg.log_every == 0 or step == cfg.steps:
                history["step"].append(step)
                for k, v in window.items():
                    history[k].append(float(v) / n_window)
                    v.zero_()
                history["lr"].append(schedule.get_last_lr()[0])
                n_window = 0
                progress.set_postfix(loss=f"{history['loss'][-1]:.4f}")
            if step in grid_steps and world.main:
                snapshot(step, ema.model)
            if checkpointer and (step % checkpointer.every == 0 or step == cfg.steps):
                world.check_same(model, ema.model)
                if world.main:
                    checkpointer.save({
                        "step": step, "model": model.state_dict(), "ema": ema.state_dict(),
                        "opt": opt.state_dict(), "schedule": schedule.state_dict(), **rng_state(accel.device),
                        "history": history, "window": {k: v.cpu() for k, v in window.items()}, "n_window": n_window})
                world.barrier()
    return ema.model, history
