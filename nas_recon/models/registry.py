"""Model registry by name: the searched net (from a genotype) and the handcrafted baselines."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from nas_recon.errors import ConfigError
from nas_recon.genotype import Genotype, genotype_from_dict
from nas_recon.models.baselines import DCCNNBody, PaddedNet, RDNBody, UNet, ZeroFilled
from nas_recon.models.cascade import CascadeNet
from nas_recon.models.searched import build_from_genotype
from nas_recon.models.varnet import VarNet
from nas_recon.physics.fusion import CG_ITERATIONS


@dataclass
class ModelSpec:
    """Everything needed to rebuild a model (stored in checkpoints)."""

    name: str
    channels: int = 32
    cascades: int = 3
    lam: float = math.inf
    learnable_lam: bool = False
    genotype: dict[str, Any] | None = field(default=None)
    cg_iterations: int = CG_ITERATIONS  # multi-coil soft DC: conjugate-gradient steps per fusion

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lam"] = "inf" if math.isinf(self.lam) else self.lam
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ModelSpec:
        """Inverse of to_dict; a clear error for unknown keys or wrong types."""
        if not isinstance(d, dict):
            raise ConfigError(f"model: expected a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"name", "channels", "cascades", "lam", "learnable_lam", "genotype", "cg_iterations"})
        if unknown:
            raise ConfigError(f"model: unknown key(s) {', '.join(map(str, unknown))}")
        d = dict(d)
        types = {"name": str, "channels": int, "cascades": int, "learnable_lam": bool, "cg_iterations": int}
        for key, typ in types.items():
            if key in d and (not isinstance(d[key], typ) or (typ is int and isinstance(d[key], bool))):
                raise ConfigError(f"model: '{key}' must be {typ.__name__}, got {d[key]!r}")
        if "name" not in d:
            raise ConfigError("model: key 'name' missing")
        if d.get("genotype") is not None and not isinstance(d["genotype"], dict):
            raise ConfigError("model: 'genotype' must be a mapping or null")
        try:
            d["lam"] = math.inf if d.get("lam") == "inf" else float(d.get("lam", math.inf))
        except (TypeError, ValueError):
            raise ConfigError(f"model: 'lam' must be a number or 'inf', got {d.get('lam')!r}") from None
        return ModelSpec(**d)


Builder = Callable[[ModelSpec, int | None], nn.Module]
FAMILIES: dict[str, tuple[bool, Builder, str]] = {}  # name -> (takes -N, builder, description)


IMAGE_MODELS: set[str] = set()  # image-domain networks: they train under the recipe's U-Net protocol (unet_crop ...)
FIXED_WIDTH: set[str] = set()  # families whose configuration is fixed (--channels cannot act on them)


def register_model(name: str, takes_n: bool, description: str, image: bool = False,
                   fixed: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register a model family; `takes_n` families are named `name-N`; `image`: an image-domain network
    (fastMRI's U-Net protocol: magnitude in and out, whole images, the recipe's unet_* settings); `fixed`: its
    configuration takes no width."""

    def deco(fn: Builder) -> Builder:
        FAMILIES[name] = (takes_n, fn, description)
        if image:
            IMAGE_MODELS.add(name)
        if fixed:
            FIXED_WIDTH.add(name)
        return fn

    return deco


@register_model("zero-filled", False, "zero-filled input, no learning")
def _zero(spec: ModelSpec, n: int | None) -> nn.Module:
    return ZeroFilled()


@register_model("unet", False, "fastMRI U-Net, image domain, no fusion (channels at the top, 4 pools)", image=True)
def _unet(spec: ModelSpec, n: int | None) -> nn.Module:
    return UNet(spec.channels, 4)


def attention_unet(c: int, pools: int, name: str) -> nn.Module:
    """MONAI's AttentionUnet (Oktay et al.'s additive gates on the skips), `c` channels at the top, `pools` levels."""
    from monai.networks.nets import AttentionUnet

    net = AttentionUnet(spatial_dims=2, in_channels=1, out_channels=1,
                        channels=tuple(c * 2 ** i for i in range(pools + 1)), strides=(2,) * pools)
    return PaddedNet(net, name, 2 ** pools, 2 ** pools)


@register_model("attention-unet", False, "Attention U-Net (MONAI AttentionUnet: additive attention gates on the "
                "skips), image domain, channels at the top, 4 pools", image=True)
def _attention_unet(spec: ModelSpec, n: int | None) -> nn.Module:
    return attention_unet(spec.channels, 4, "attention-unet")


@register_model("attention-unet-small", False, "Attention U-Net for the CPU demo (a smaller configuration): "
                "half the channels at the top, 3 pools", image=True)
def _attention_unet_small(spec: ModelSpec, n: int | None) -> nn.Module:
    return attention_unet(max(1, spec.channels // 2), 3, "attention-unet-small")


@register_model("unet-effb0", False, "U-Net with an EfficientNet-B0 encoder (MONAI FlexibleUNet, no pretrained "
                "weights: none is ever downloaded), image domain", image=True, fixed=True)
def _unet_effb0(spec: ModelSpec, n: int | None) -> nn.Module:
    from monai.networks.nets import FlexibleUNet

    net = FlexibleUNet(in_channels=1, out_channels=1, backbone="efficientnet-b0", pretrained=False, spatial_dims=2)
    return PaddedNet(net, "unet-effb0", 32, 32)


def squeeze_unet(width: float, name: str) -> nn.Module:
    """Squeeze U-Net under fastMRI's U-Net protocol, every layer's channels scaled by `width`."""
    from nas_recon.models.squeeze import SqueezeUNet

    return PaddedNet(SqueezeUNet(1, 1, width), name, SqueezeUNet.STRIDE, SqueezeUNet.STRIDE)


@register_model("squeeze-unet", False, "Squeeze U-Net (Beheshti & Johnsson 2020; fire modules), the layout of the "
                "Keras code the seed report trained, image domain", image=True, fixed=True)
def _squeeze_unet(spec: ModelSpec, n: int | None) -> nn.Module:
    return squeeze_unet(1.0, "squeeze-unet")


@register_model("squeeze-unet-small", False, "Squeeze U-Net for the CPU demo (a smaller configuration): half the "
                "channels in every layer", image=True, fixed=True)
def _squeeze_unet_small(spec: ModelSpec, n: int | None) -> nn.Module:
    return squeeze_unet(0.5, "squeeze-unet-small")


@register_model("dccnn", True, "DC-CNN: N residual blocks per cascade, cascades not shared")
def _dccnn(spec: ModelSpec, n: int | None) -> nn.Module:
    return CascadeNet([DCCNNBody(n, spec.channels) for _ in range(spec.cascades)], spec.lam, spec.learnable_lam,
                      spec.cg_iterations)


@register_model("modl", True, "MoDL: the DC-CNN-N body shared by all cascades")
def _modl(spec: ModelSpec, n: int | None) -> nn.Module:
    body = DCCNNBody(n, spec.channels)
    return CascadeNet([body] * spec.cascades, spec.lam, spec.learnable_lam, spec.cg_iterations)


@register_model("rdn", True, "RDN: a dilated block applied N times (shared), cascades not shared")
def _rdn(spec: ModelSpec, n: int | None) -> nn.Module:
    return CascadeNet([RDNBody(n, spec.channels) for _ in range(spec.cascades)], spec.lam, spec.learnable_lam,
                      spec.cg_iterations)


@register_model("varnet", False, "E2E-VarNet, fastMRI's VarNet() defaults: 12 cascades, 18 channels, "
                "sensitivity U-Net 8 channels, 4 pools", fixed=True)
def _varnet(spec: ModelSpec, n: int | None) -> nn.Module:
    return VarNet(cascades=12, chans=18, pools=4, sens_chans=8, sens_pools=4)


@register_model("varnet-small", False, "E2E-VarNet for the CPU demo (a smaller configuration): 4 cascades, "
                "8 channels, sensitivity U-Net 4 channels, 3 pools", fixed=True)
def _varnet_small(spec: ModelSpec, n: int | None) -> nn.Module:
    return VarNet(cascades=4, chans=8, pools=3, sens_chans=4, sens_pools=3)


def dircn(spec: ModelSpec, cascades: int, n: int, groups: int) -> nn.Module:
    """DIRCN of `cascades` ResXUNets of `n` channels at the top, `groups` in their grouped convs."""
    from nas_recon.models.dircn import DIRCN

    return DIRCN(cascades, n, groups, cg_iterations=spec.cg_iterations)


@register_model("dircn", False, "DIRCN (Ottesen et al. 2022), the authors' defaults: 30 cascades of ResXUNets of "
                "20 channels (groups of 4), input-level dense connections, interconnected decoders, learnt soft "
                "DC; the coil maps are the data's (ESPIRiT), not learnt", fixed=True)
def _dircn(spec: ModelSpec, n: int | None) -> nn.Module:
    return dircn(spec, 30, 20, 4)


@register_model("dircn-small", False, "DIRCN for the CPU demo (a smaller configuration): 3 cascades of "
                "ResXUNets of 8 channels (groups of 2)", fixed=True)
def _dircn_small(spec: ModelSpec, n: int | None) -> nn.Module:
    return dircn(spec, 3, 8, 2)


@register_model("searched", False, "the searched network of a genotype JSON")
def _searched(spec: ModelSpec, n: int | None) -> nn.Module:
    if spec.genotype is None:
        raise ConfigError("model 'searched' needs a genotype (--genotype FILE)")
    g = genotype_from_dict(spec.genotype)
    return build_from_genotype(g, spec.lam, spec.learnable_lam, cg_iterations=spec.cg_iterations)


MAX_DEPTH = 256  # N of dccnn-N / modl-N / rdn-N: far above the paper's, small enough to build
CLASSICAL = ("tv",)  # solvers, not networks: evaluate/reconstruct only


def parse_name(name: str) -> tuple[str, int | None]:
    """'dccnn-3' -> ('dccnn', 3); errors name the model."""
    m = re.fullmatch(r"([a-z][a-z-]*?)(?:-(\d+))?", name)
    if m and m.group(1) in FAMILIES:
        family, n = m.group(1), m.group(2)
    elif name in FAMILIES:
        family, n = name, None
    else:
        family, n = "", None
    if family not in FAMILIES:
        known = ", ".join(f"{k}-N" if FAMILIES[k][0] else k for k in FAMILIES if k != "searched")
        raise ConfigError(f"--model: unknown model '{name}', expected one of {known}, tv (or --genotype FILE)")
    takes_n = FAMILIES[family][0]
    if takes_n and (n is None or int(n) < 1):
        raise ConfigError(f"--model: '{name}' needs a positive depth, e.g. {family}-3")
    if takes_n and int(n) > MAX_DEPTH:
        raise ConfigError(f"--model: depth {int(n):,} in '{name}' is beyond {MAX_DEPTH} (the deepest nas-recon builds; "
                          f"the paper's baselines use 3 to 10)")
    if not takes_n and n is not None:
        raise ConfigError(f"--model: '{family}' takes no depth, got '{name}'")
    return family, int(n) if n is not None else None


def build_model(spec: ModelSpec) -> nn.Module:
    """Instantiate the model a ModelSpec names."""
    family, n = parse_name(spec.name)
    return FAMILIES[family][1](spec, n)


def spec_for_genotype(genotype: Genotype, lam: float = math.inf) -> ModelSpec:
    """ModelSpec of a searched network."""
    d = genotype.to_dict()
    d = {k: d[k] for k in ("format", "version", "space", "channels", "cells", "cascades", "nodes", "cell", "bias",
                           "backbone", "shared", "dc") if k in d}
    return ModelSpec("searched", genotype.channels, genotype.cascades, lam, False, d)


def count_params(model: nn.Module) -> int:
    """Learnable parameters, shared weights counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
