"""Search space: the op registry and search spaces loaded from data files."""

from nas_recon.space.ops import OPS, build_op, register_op
from nas_recon.space.spaces import SearchSpace, load_space

__all__ = ["OPS", "SearchSpace", "build_op", "load_space", "register_op"]
