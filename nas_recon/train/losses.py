"""Training losses: l1, mse, ssim, ms-ssim (pytorch-msssim) and compounds like `l1+ms-ssim:0.16`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from pytorch_msssim import ms_ssim, ssim
from torch.nn import functional as F

from nas_recon.errors import ConfigError

if TYPE_CHECKING:
    from nas_recon.data.sample import Sample

SSDU_LOSS = "ssdu"  # the recipe's loss under supervision = ssdu (nas_recon.data.ssdu.ssdu_loss)
SIMPLE = ("l1", "mse")
STRUCTURAL = ("ssim", "ms-ssim")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MS_SSIM_WIN = 7
MS_SSIM_MIN = (MS_SSIM_WIN - 1) * 2**4 + 1  # smallest side pytorch-msssim accepts with 5 scales


def _magnitude(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x[:, 0:1] ** 2 + x[:, 1:2] ** 2 + 1e-12)


def _structural(name: str) -> LossFn:
    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a, b = _magnitude(out), _magnitude(target)
        dr = float(b.detach().max())
        if name == "ssim":
            return 1 - ssim(a, b, data_range=dr, size_average=True, win_size=7)
        if min(a.shape[-2:]) < MS_SSIM_MIN:
            raise ConfigError(f"loss ms-ssim: images must be at least {MS_SSIM_MIN} pixels a side, got "
                              f"{tuple(a.shape[-2:])} (use a larger --crop)")
        return 1 - ms_ssim(a, b, data_range=dr, size_average=True, win_size=MS_SSIM_WIN)

    return loss


def _simple(name: str) -> LossFn:
    return F.l1_loss if name == "l1" else F.mse_loss


def parse_loss(spec: str) -> LossFn:
    """`l1`, `mse`, `ssim`, `ms-ssim`, or `SIMPLE+STRUCTURAL:alpha` = alpha*simple + (1-alpha)*structural."""
    s = spec.strip().lower()
    if s in SIMPLE:
        return _simple(s)
    if s in STRUCTURAL:
        return _structural(s)
    m = re.fullmatch(r"(l1|mse)\+(ssim|ms-ssim):([0-9]*\.?[0-9]+)", s)
    if not m:
        raise ConfigError(
            f"--loss: malformed loss '{spec}', expected l1, mse, ssim, ms-ssim or e.g. l1+ms-ssim:0.16"
        )
    alpha = float(m.group(3))
    if not 0 <= alpha <= 1:
        raise ConfigError(f"--loss: weight {alpha} in '{spec}' must be in [0, 1]")
    simple, structural = _simple(m.group(1)), _structural(m.group(2))

    def compound(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return alpha * simple(out, target) + (1 - alpha) * structural(out, target)

    return compound


Objective = Callable[[torch.Tensor, "Sample"], torch.Tensor]


def objective(loss: str, supervision: str = "full") -> Objective:
    """What a training step minimises given the network's output and its batch: the loss `loss` against the
    reference (supervised), or SSDU's loss on the held-out k-space."""
    if supervision == "ssdu":
        from nas_recon.data.ssdu import ssdu_loss

        return ssdu_loss
    fn = parse_loss(loss)
    return lambda out, b: fn(out, b.target)
