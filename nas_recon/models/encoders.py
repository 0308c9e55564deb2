"""Encoders of the image networks: the module whose output is a network's representation (its bottleneck), registered
by model name, for contrastive pretraining (nas_recon.train.pretrain)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from nas_recon.errors import ConfigError

Finder = Callable[[nn.Module], nn.Module]
ENCODERS: dict[str, Finder] = {}


def register_encoder(*names: str) -> Callable[[Finder], Finder]:
    """Decorator: `fn(network) -> module` gives the bottleneck of the named models."""

    def deco(fn: Finder) -> Finder:
        for name in names:
            ENCODERS[name] = fn
        return fn

    return deco


@register_encoder("unet")
def _unet_bottom(net: nn.Module) -> nn.Module:
    return net.bottom


@register_encoder("attention-unet", "attention-unet-small")
def _attention_bottom(net: nn.Module) -> nn.Module:
    """MONAI's AttentionUnet nests each level's AttentionLayer in the one above; the deepest holds the bottom block."""
    layer = net.net.model[1]
    while isinstance(layer.submodule, nn.Sequential):
        layer = layer.submodule[1]
    return layer.submodule


def encoder_of(name: str, net: nn.Module) -> nn.Module:
    """The bottleneck module of model `name`'s network `net`; ConfigError naming the pretrainable models."""
    if name not in ENCODERS:
        raise ConfigError(f"--model: '{name}' has no encoder to pretrain; contrastive pretraining takes "
                          f"{', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](net)
