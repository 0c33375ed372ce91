"""Supervised classifier training: cosine LR, label smoothing, early stopping on val accuracy."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from genaug.accel import Accel
from genaug.data.batches import Batches, ordered, random_crop_flip
from genaug.sections import ClassifierConfig
from genaug.train.distributed import World, after_step
from genaug.train.progress import bar


def train_classifier(model: torch.nn.Module, train: tuple[np.ndarray, np.ndarray],
                     val: tuple[np.ndarray, np.ndarray], cfg: ClassifierConfig, accel: Accel,
                     seed: int, crop_pad: int = 0, world: World = World()) -> dict[str, list]:
    """Train ``model`` in place and leave it holding the weights of its best val epoch.

    train, val: (uint8 images [N, C, H, W], int64 labels [N]). Stops after ``patience``
    epochs without a better val accuracy. Returns per-epoch train_loss, train_acc,
    val_loss, val_acc, lr, plus best_epoch (1-based) and stopped_early. crop_pad > 0:
    random crops with this padding plus horizontal flips (for natural images).
    world: this process's rank (genaug.train.distributed): each rank trains on its rows of
    every global batch under DistributedDataParallel, with the crops drawn for the whole
    batch; every rank scores the whole val split with the same weights, so all stop alike.
    """
    gen = torch.Generator().manual_seed(seed)  # augmentation draws
    batches = Batches(*train, cfg.batch, accel.device, seed)
    model = world.sync_batchnorm(accel.prepare(model))
    net = world.wrap(model)  # forward and backward through DDP; state is ``model``'s
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=accel.device.type == "cuda")
    total = cfg.epochs * len(batches)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total,
                                                pct_start=0.15, anneal_strategy="cos")
    history = {k: [] for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")}
    best_acc, best_state, best_epoch, stale = -1.0, None, 0, 0
    with bar(total, "train_classifier", "batch", disable=not world.main) as progress:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            loss_sum = torch.zeros((), device=accel.device)
            correct = torch.zeros((), device=accel.device, dtype=torch.long)
            seen = 0
            for xb, yb in batches:  # global batches; the crops are drawn for all of each
                x = accel.images(xb)
                if crop_pad:
                    x = random_crop_flip(x, crop_pad, gen)
                parts = world.parts(len(yb))
                share = sum(p.stop - p.start for p in parts)
                opt.zero_grad(set_to_none=True)
                for j, part in enumerate(parts):  # one piece unless GENAUG_BATCH_PER_GPU splits the share
                    with world.accumulating(net, last=j == len(parts) - 1):
                        with accel.autocast():
                            logits = net(x[part])
                            loss = F.cross_entropy(logits.float(), yb[part], label_smoothing=cfg.label_smoothing)
                        (loss * ((part.stop - part.start) / share) if len(parts) > 1 else loss).backward()
                    # Accumulate on the device: a .item() per batch would sync the GPU every step.
                    loss_sum += loss.detach() * (part.stop - part.start)
                    correct += (logits.argmax(1) == yb[part]).sum()
                    seen += part.stop - part.start
                opt.step()
                sched.step()
                after_step(world, model)
                progress.update()
            # Rank 0's BatchNorm statistics on every rank (a rank's own last until the next
            # forward): the same weights score val alike, so every rank stops at the same epoch.
            world.broadcast_buffers(model)
            val_logits = predict(model, val[0], accel)
            val_loss = F.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(val[1])).item()
            val_acc = float((val_logits.argmax(1) == val[1]).mean())
            seen_all = float(world.mean(torch.tensor(float(seen)))) * world.size
            for k, v in (("epoch", epoch), ("train_loss", float(world.mean(loss_sum)) * world.size / seen_all),
                         ("train_acc", float(world.mean(correct.float())) * world.size / seen_all),
                         ("val_loss", val_loss),
                         ("val_acc", val_acc), ("lr", sched.get_last_lr()[0])):
                history[k].append(v)
            progress.set_postfix(epoch=epoch, val_acc=f"{val_acc:.4f}")
            if val_acc > best_acc:
                best_acc, best_epoch, stale = val_acc, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
    world.check_same(model)
    model.load_state_dict(best_state)
    history["best_epoch"] = best_epoch
    history["stopped_early"] = epoch < cfg.epochs
    return history


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, accel: Accel, batch: int = 1000) -> np.ndarray:
    """Logits float32 [N, K] for uint8 images [N, C, H, W], in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for xb in ordered(x, batch):
        with accel.autocast():
            out.append(model(accel.images(xb)).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()
