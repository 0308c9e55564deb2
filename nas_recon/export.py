"""Export a trained checkpoint to TorchScript (or ONNX, with DFT-matrix fusion in real arithmetic)."""

from __future__ import annotations

import json
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
    """KSpaceFusion for a fixed H x W with the 2-D DFT as real matrix products (ONNX has no complex FFT)."""

    def __init__(self, fusion: KSpaceFusion, height: int, width: int) -> None:
        super().__init__()
        ch, cw = centered_dft_matrix(height), centered_dft_matrix(width)
        self.register_buffer("hr", ch.real.contiguous())
        self.register_buffer("hi", ch.imag.contiguous())
        self.register_buffer("wr", cw.real.T.contiguous())
        self.register_buffer("wi", cw.imag.T.contiguous())
        self.hard = fusion.hard
        self.register_buffer("lam", fusion.current_lam().detach().clone())

    def _mul(self, ar, ai, br, bi, xr, xi):
        """(A) X (B) for complex A = ar + i ai (left), B = br + i bi (right), X = xr + i xi."""
        yr = torch.matmul(ar, xr) - torch.matmul(ai, xi)
        yi = torch.matmul(ar, xi) + torch.matmul(ai, xr)
        return torch.matmul(yr, br) - torch.matmul(yi, bi), torch.matmul(yr, bi) + torch.matmul(yi, br)

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        kr, ki = self._mul(self.hr, self.hi, self.wr, self.wi, x[:, 0], x[:, 1])
        m = mask[:, 0]
        if self.hard:
            kr = (1 - m) * kr + m * k0[:, 0]
            ki = (1 - m) * ki + m * k0[:, 1]
        else:
            kr = (1 - m) * kr + m * (kr + self.lam * k0[:, 0]) / (1 + self.lam)
            ki = (1 - m) * ki + m * (ki + self.lam * k0[:, 1]) / (1 + self.lam)
        # inverse: conjugate transposes of the (unitary) matrices
        yr, yi = self._mul(self.hr.T, -self.hi.T, self.wr.T, -self.wi.T, kr, ki)
        return torch.stack((yr, yi), dim=1)


def swap_fusions(model: nn.Module, height: int, width: int) -> nn.Module:
    """Replace every KSpaceFusion by a MatrixFusion (in place)."""
    for name, child in list(model.named_children()):
        if isinstance(child, KSpaceFusion):
            setattr(model, name, MatrixFusion(child, height, width))
        else:
            swap_fusions(child, height, width)
    return model


def export_model(model: nn.Module, fmt: str, out: Path, size: int = SIZE) -> Path:
    """Write `out` atomically: TorchScript (any size) or ONNX (fixed size x size)."""
    model = model.eval()
    with atomic_path(out) as tmp:
        if fmt == "torchscript":  # the marker lets a later export replace this file (nas_recon.outputs)
            torch.jit.save(torch.jit.script(model), tmp,
                           _extra_files={TORCHSCRIPT_EXTRA: json.dumps({"format": KINDS["torchscript"]})})
        elif fmt == "onnx":
            try:
                import onnx  # noqa: F401
            except ImportError as e:
                raise ConfigError("--format onnx needs the onnx package (pip install 'nas-recon[onnx]')") from e
            swap_fusions(model, size, size)
            x = torch.zeros(1, 2, size, size)
            mask = torch.ones(1, 1, 1, size)
            torch.onnx.export(model, (x, x, mask), tmp, input_names=["input", "kspace", "mask"],
                              output_names=["output"], dynamo=False, opset_version=17)
            import onnx

            m = onnx.load(tmp)
            onnx.helper.set_model_props(m, {MARKER: KINDS["onnx"]})
            onnx.save(m, tmp)
        else:
            raise ConfigError(f"--format: unknown '{fmt}', expected torchscript or onnx")
    return out
