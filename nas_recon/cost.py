"""Cost of a model: learnable parameters, conv multiply-accumulates (thop) and measured latency."""

from __future__ import annotations

import statistics
import time
import warnings

import torch
from thop import profile
from thop.profile import register_hooks
from thop.vision.basic_hooks import zero_ops
from torch import nn

from nas_recon.defaults import SIZE
from nas_recon.device import place
from nas_recon.models.registry import count_params

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def model_inputs(size: int, coils: int = 0, width: int | None = None, device: torch.device | None = None,
                 random: bool = False) -> tuple[torch.Tensor, ...]:
    """One slice's (input, kspace, mask, maps) at size x width (default square): single-coil, or `coils` coils
    (k-space and maps [1, coils, 2, H, W]; the mask samples every column)."""
    w = width or size
    make = torch.randn if random else torch.zeros
    x = make(1, 2, size, w, device=device)
    mask = torch.ones(1, 1, 1, w, device=device)
    if not coils:
        return x, x, mask, torch.zeros(0, device=device)
    k = make(1, coils, 2, size, w, device=device)
    maps = torch.full((1, coils, 2, size, w), coils ** -0.5, device=device)
    maps[:, :, 1] = 0  # real maps, sum_c |S_c|^2 = 1
    return x, k, mask, maps


def conv_macs(model: nn.Module, size: int = SIZE, coils: int = 0, width: int | None = None) -> int:
    """Multiply-accumulates of all conv layers for one 2 x size x size input through the whole network
    (multi-coil: `coils` coils; `width` for a non-square slice, e.g. fastMRI's 640 x 368).

    thop's own conv counter; every other layer type thop knows is counted as zero (SPEC: conv MACs only).
    Shared or recurrent modules count once per call, so all cascades and recursions are included.
    """
    return module_macs(model, model_inputs(size, coils, width))


def module_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """Conv multiply-accumulates of one call `module(*inputs)` (thop; other layers count zero)."""
    custom = {t: zero_ops for t in register_hooks if not issubclass(t, CONV_TYPES)}
    was_training = module.training
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        macs, _ = profile(module, inputs=inputs, custom_ops=custom, verbose=False)
    module.train(was_training)
    strip_thop_buffers(module)
    return int(macs)


def strip_thop_buffers(model: nn.Module) -> None:
    """Remove the counters thop leaves on modules (so state dicts stay clean)."""
    for m in model.modules():
        for key in ("total_ops", "total_params"):
            m._buffers.pop(key, None)


def latency_ms(model: nn.Module, size: int = SIZE, device: torch.device | None = None, repeats: int = 10,
               warmup: int = 2, coils: int = 0, width: int | None = None) -> float:
    """Median wall time of one slice (batch 1) after warm-up, under torch.inference_mode."""
    device = device or torch.device("cpu")
    model = place(model, device).eval()
    inputs = model_inputs(size, coils, width, device, random=True)
    return timed_ms(lambda: model(*inputs), device, repeats, warmup)


def timed_ms(call, device: torch.device, repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time of `call()` in ms after `warmup` calls, under torch.inference_mode (CUDA synchronised)."""
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            call()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1000)
    return float(statistics.median(times))


def model_cost(model: nn.Module, size: int = SIZE, device: torch.device | None = None, repeats: int = 10,
               latency: bool = True, coils: int = 0, width: int | None = None) -> dict:
    """{'params', 'flops', 'latency_ms'} of a network (at `coils` coils and size x width when given)."""
    out = {"params": count_params(model), "flops": conv_macs(model, size, coils, width)}
    if latency:
        out["latency_ms"] = latency_ms(model, size, device, repeats, coils=coils, width=width)
    return out
