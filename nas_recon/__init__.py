"""nas-recon: differentiable architecture search for compressed-sensing MRI reconstruction."""

__version__ = "0.1.0"
