"""Second-order (unrolled) DARTS: the architecture gradient through one virtual weight step (Liu et al. 2019)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

Loss = Callable[[], torch.Tensor]


def unrolled_alpha_grads(train_loss: Loss, val_loss: Loss, weights: Sequence[torch.Tensor],
                         alphas: Sequence[torch.Tensor], xis: Sequence[float], eps: float = 0.01,
                         mean: Callable[[list], list] | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """d/d alpha of L_val(w', alpha) with w' = w - xi * grad_w L_train(w, alpha), and L_val(w', alpha).

    = grad_alpha L_val(w', alpha) - H v, where v = xi * grad_w' L_val(w', alpha) and H v, the mixed second
    derivative of L_train times v, is the central difference (grad_alpha L_train(w + r v) - grad_alpha
    L_train(w - r v)) / 2r with r = eps / |v| (DARTS' eq. 7 and 8). `xis` gives each weight its own step (the
    per-conv learning rates). The weights are left exactly as they came in. `mean` (data-parallel ranks) averages
    each gradient over the ranks as it is computed, so that every rank computes the one-process result.
    """
    weights, alphas = list(weights), list(alphas)
    mean = mean or (lambda ts: ts)
    g = mean(list(torch.autograd.grad(train_loss(), weights, allow_unused=True)))
    backup = [w.detach().clone() for w in weights]
    try:
        with torch.no_grad():
            for w, gi, xi in zip(weights, g, xis, strict=True):
                if gi is not None:
                    w.sub_(xi * gi)
        lv = val_loss()
        grads = mean(list(torch.autograd.grad(lv, alphas + weights, allow_unused=True)))
        da = [torch.zeros_like(a) if d is None else d for a, d in zip(alphas, grads[: len(alphas)], strict=True)]
        v = [torch.zeros_like(w) if d is None else xi * d
             for w, d, xi in zip(weights, grads[len(alphas):], xis, strict=True)]
        norm = math.sqrt(sum(float(t.pow(2).sum()) for t in v))
        if norm == 0.0:
            return da, lv.detach()
        r = eps / norm
        sides = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for w, b, vi in zip(weights, backup, v, strict=True):
                    w.copy_(b + sign * r * vi)
            ga = mean(list(torch.autograd.grad(train_loss(), alphas, allow_unused=True)))
            sides.append([torch.zeros_like(a) if d is None else d for a, d in zip(alphas, ga, strict=True)])
        hv = [(p - n) / (2 * r) for p, n in zip(*sides, strict=True)]
        return [d - h for d, h in zip(da, hv, strict=True)], lv.detach()
    finally:
        with torch.no_grad():
            for w, b in zip(weights, backup, strict=True):
                w.copy_(b)


def unrolled_oneshot(task, arc_learning_rate: float, gradient_clip_val: float | None):
    """NNI's DARTS Lightning module with the architecture step replaced by the unrolled (second-order) one.

    `task` is the SearchTask: `weight_loss(batch)` and `arch_loss(batch)` (the latter with any cost penalty) are
    the two losses; each weight's virtual step uses its current learning rate in the weight optimiser.
    """
    from nas_recon.engine.dist import ALONE, mean_over_ranks_all
    from nas_recon.search.nni_api import DartsLightningModule, weight_step_index

    class UnrolledDarts(DartsLightningModule):
        def training_step(self, batch, batch_idx):
            trn, val = batch["train"], batch["val"]
            arc_optim = self.architecture_optimizers()
            self.resample()
            arc_optim.zero_grad()
            opts = self.optimizers()
            opts = opts if isinstance(opts, list) else [opts]
            w_opt = next(o for o in opts if not getattr(o, "is_arch_optimizer", False))
            pairs = [(p, g["lr"]) for g in w_opt.param_groups for p in g["params"] if p.requires_grad]
            alphas = list(self.arch_parameters())
            world = getattr(task, "world", ALONE)
            grads, _ = unrolled_alpha_grads(lambda: task.weight_loss(trn), lambda: task.arch_loss(val),
                                             [p for p, _ in pairs], alphas, [lr for _, lr in pairs],
                                             mean=(lambda ts: mean_over_ranks_all(world, ts)) if world.distributed
                                             else None)
            for a, gr in zip(alphas, grads, strict=True):
                a.grad = gr  # set by hand (no gradient hook sees it), already averaged over the ranks
            arc_optim.step()
            self.resample()
            out = task.training_step(trn, weight_step_index(batch_idx))
            self.advance_optimization(out, batch_idx, self.gradient_clip_val)
            self.advance_lr_schedulers(batch_idx)
            return out

    return UnrolledDarts(task, arc_learning_rate=arc_learning_rate, gradient_clip_val=gradient_clip_val)
