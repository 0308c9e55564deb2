"""k-space physics: FFTs, complex layout, crops, masks and k-space fusion."""

from nas_recon.physics.fft import center_crop, chan_to_complex, complex_to_chan, fft2c, ifft2c
from nas_recon.physics.fusion import KSpaceFusion, fuse
from nas_recon.physics.masks import MaskSpec, center_fraction_for, make_mask

__all__ = [
    "KSpaceFusion",
    "MaskSpec",
    "center_crop",
    "center_fraction_for",
    "chan_to_complex",
    "complex_to_chan",
    "fft2c",
    "fuse",
    "ifft2c",
    "make_mask",
]
