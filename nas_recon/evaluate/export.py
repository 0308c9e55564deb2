"""Export a trained checkpoint to TorchScript (or ONNX, with DFT-matrix fusion in real arithmetic, single- or
multi-coil)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from nas_recon.defaults import SIZE
from nas_recon.errors import ConfigError
from nas_recon.io import atomic_path
from nas_recon.outputs import KINDS, MARKER, TORCHSCRIPT_EXTRA
from nas_recon.physics.fusion import KSpaceFusion


def centered_dft_matrix(n: int) -> torch.Tensor:
    """Matrix C (complex, n x n) with C @ v = fftshift(fft(ifftshift(v), norm='ortho'))."""
    eye = torch.eye(n, dtype=torch.complex64)
    return torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(eye, dim=0), dim=0, norm="ortho"), dim=0)


class MatrixFusion(nn.Module):
    """A KSpaceFusion's own rule (`blend`) with the centred 2-D DFT of a fixed H x W as real matrix products (ONNX
    has no complex FFT)."""

    def __init__(self, fusion: KSpaceFusion, height: int, width: int) -> None:
        super().__init__()
        ch, cw = centered_dft_matrix(height), centered_dft_matrix(width)
        self.register_buffer("hr", ch.real.contiguous())
        self.register_buffer("hi", ch.imag.contiguous())
        self.register_buffer("wr", cw.real.T.contiguous())
        self.register_buffer("wi", cw.imag.T.contiguous())
        self.fusion = fusion

    def _mul(self, ar, ai, br, bi, x: torch.Tensor) -> torch.Tensor:
        """(A) X (B) for complex A = ar + i ai (left), B = br + i bi (right), X as [..., 2, H, W] channels."""
        xr, xi = x[..., 0, :, :], x[..., 1, :, :]
        yr = torch.matmul(ar, xr) - torch.matmul(ai, xi)
        yi = torch.matmul(ar, xi) + torch.matmul(ai, xr)
        return torch.stack((torch.matmul(yr, br) - torch.matmul(yi, bi), torch.matmul(yr, bi) + torch.matmul(yi, br)),
                           dim=-3)

    def _consistent(self, k: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """F^H blend(k, k0, M): the fusion rule in k-space `k` ([..., 2, H, W]), back to images."""
        return self._mul(self.hr.T, -self.hi.T, self.wr.T, -self.wi.T, self.fusion.blend(k, k0, mask))

    def _coil_images(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Data-consistent coil images F^H blend(F S_c x) [B, coils, 2, H, W] (maps [B, coils, 2, H, W])."""
        zr, zi = x[:, None, 0], x[:, None, 1]
        sr, si = maps[:, :, 0], maps[:, :, 1]
        coils = torch.stack((sr * zr - si * zi, sr * zi + si * zr), dim=2)
        return self._consistent(self._mul(self.hr, self.hi, self.wr, self.wi, coils), k0, mask.unsqueeze(1))

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        if maps is None or maps.numel() == 0:  # mask over the channels
            return self._consistent(self._mul(self.hr, self.hi, self.wr, self.wi, x), k0, mask)
        # multi-coil, the hard rule (soft SENSE data consistency is a CG solve, not exported): S^H F^H blend(F S x)
        c = self._coil_images(x, k0, mask, maps)
        sr, si, cr, ci = maps[:, :, 0], maps[:, :, 1], c[:, :, 0], c[:, :, 1]
        return torch.stack(((sr * cr + si * ci).sum(1), (sr * ci - si * cr).sum(1)), dim=1)

    def coil_output(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """KSpaceFusion.coil_output: the RSS of the data-consistent coil images, with x's phase."""
        mag = (self._coil_images(x, k0, mask, maps) ** 2).sum(dim=(1, 2)).add(1e-24).sqrt()
        norm = (x**2).sum(1, keepdim=True).sqrt()
        one = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)  # phase 1 where x = 0, as physics.coils.phase
        return mag[:, None] * torch.where(norm > 0, x / norm.clamp_min(1e-30), one)


def swap_fusions(model: nn.Module, height: int, width: int) -> nn.Module:
    """Replace every KSpaceFusion by a MatrixFusion (in place)."""
    for name, child in list(model.named_children()):
        if isinstance(child, KSpaceFusion):
            setattr(model, name, MatrixFusion(child, height, width))
        else:
            swap_fusions(child, height, width)
    return model


def check_exportable(model: nn.Module, fmt: str, coils: int, name: str) -> None:
    """ConfigError unless `model` exports as `fmt` for data of `coils` coils (0: single-coil)."""
    if not coils:
        return
    fusions = [m for m in model.modules() if isinstance(m, KSpaceFusion)]
    if fmt != "onnx":
        raise ConfigError(f"{name}: trained on multi-coil data ({coils} coils); TorchScript exports are single-coil, "
                          "use --format onnx (the SENSE operator as DFT matrices)")
    if not fusions or not isinstance(getattr(model, "fusions", None), nn.ModuleList):
        raise ConfigError(f"{name}: multi-coil export is built for the cascade networks (searched, DC-CNN, MoDL, "
                          "RDN, DIRCN), whose FFTs sit in their k-space fusions; this model computes its own")
    if any(not f.hard for f in fusions):
        raise ConfigError(f"{name}: its SENSE data consistency is soft (a conjugate-gradient solve, --soft-dc); "
                          "multi-coil export takes the hard rule")


def script(model: nn.Module) -> torch.jit.ScriptModule:
    """TorchScript of `model`; ConfigError when TorchScript cannot compile it (the image-domain networks and
    E2E-VarNet: their coil and library code is Python only)."""
    try:
        return torch.jit.script(model)
    except (RuntimeError, torch.jit.frontend.FrontendError) as e:
        raise ConfigError(f"--format torchscript: {type(model).__name__} does not compile to TorchScript "
                          f"({str(e).splitlines()[0][:120]}); use --format onnx") from None


def export_model(model: nn.Module, fmt: str, out: Path, size: int = SIZE, coils: int = 0) -> Path:
    """Write `out` atomically: TorchScript (any size, single-coil) or ONNX (fixed size x size; multi-coil: `coils`
    coils, the maps an input)."""
    model = model.eval()
    check_exportable(model, fmt, coils, type(model).__name__)
    scripted = script(model) if fmt == "torchscript" else None
    with atomic_path(out) as tmp:
        if scripted is not None:  # the marker lets a later export replace this file (nas_recon.outputs)
            torch.jit.save(scripted, tmp,
                           _extra_files={TORCHSCRIPT_EXTRA: json.dumps({"format": KINDS["torchscript"]})})
        elif fmt == "onnx":
            try:
                import onnx  # noqa: F401
            except ImportError as e:
                raise ConfigError("--format onnx needs the onnx package (pip install 'nas-recon[onnx]')") from e
            swap_fusions(model, size, size)
            x = torch.zeros(1, 2, size, size)
            mask = torch.ones(1, 1, 1, size)
            if coils:
                k = torch.zeros(1, coils, 2, size, size)
                args, names = (x, k, mask, k.clone()), ["input", "kspace", "mask", "maps"]
            else:
                args, names = (x, x, mask), ["input", "kspace", "mask"]
            with warnings.catch_warnings():  # the tracer's notes on the (static) single/multi-coil branches
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                torch.onnx.export(model, args, tmp, input_names=names, output_names=["output"], dynamo=False,
                                  opset_version=17)
            import onnx

            m = onnx.load(tmp)
            onnx.helper.set_model_props(m, {MARKER: KINDS["onnx"]})
            onnx.save(m, tmp)
        else:
            raise ConfigError(f"--format: unknown '{fmt}', expected torchscript or onnx")
    return out
