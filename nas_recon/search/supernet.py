"""The DARTS supernet: the SPEC backbone with every cell edge an NNI mixed op, one alpha for all cells."""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from nas_recon.errors import ConfigError
from nas_recon.models.cascade import CascadeNet
from nas_recon.models.init import add_conv_biases, init_cell_network
from nas_recon.models.searched import CellBody, ChainBody, ChainCell, bare_op, preprocess
from nas_recon.search import strategies
from nas_recon.search.derive import EdgeWeights
from nas_recon.search.mixed import PC_K, LeanMixedCell, PartialChannelCell, edge_betas
from nas_recon.search.nni_api import (
    CELL_LABEL,
    DARTS,
    Cell,
    GumbelDARTS,
    LayerChoice,
    ModelSpace,
    RandomOneShot,
    alphas_of,
    chain_label,
    edge_key,
    harden_gumbel,
    has_alphas,
    layer_names,
    mixed_layers,
)
from nas_recon.search.strategies import strategy as strategy_of
from nas_recon.space.ops import build_op
from nas_recon.space.spaces import SearchSpace

logging.getLogger("nni").setLevel(logging.WARNING)


class CellPreprocessor(nn.Module):
    """ReLU -> 1x1 conv on each of C_{l-2}, C_{l-1} (NNI Cell's preprocessor)."""

    def __init__(self, c_pp: int, c_p: int, c: int) -> None:
        super().__init__()
        self.pre0 = preprocess(c_pp, c)
        self.pre1 = preprocess(c_p, c)

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.pre0(inputs[0]), self.pre1(inputs[1])]


def op_factory(name: str, channels: int):
    """NNI op-candidate factory: called with (node_index, op_index, input_index)."""

    def make(node_index: int, op_index: int, input_index: int | None = None) -> nn.Module:
        return build_op(name, channels)

    return make


def super_body(space: SearchSpace, op_channels: int | None = None) -> CellBody:
    """One reconstruction module with NNI cells (one label: all share their alphas) in place of derived cells.

    `op_channels`: the ops' width when it differs from the cell's (PC-DARTS: channels / K).
    """
    c, n = space.channels, space.nodes
    oc = op_channels or c

    def make_cell(c_pp: int, c_p: int) -> nn.Module:
        return Cell(
            {name: op_factory(name, oc) for name in space.real_ops},
            num_nodes=n, num_ops_per_node=2, num_predecessors=2, merge_op="all",
            preprocessor=CellPreprocessor(c_pp, c_p, c), concat_dim=1, label=CELL_LABEL,
        )

    return CellBody(c, n, space.cells, make_cell)


def chain_super_body(space: SearchSpace) -> ChainBody:
    """One chain reconstruction module whose op slots are NNI LayerChoices over the space's ops (`none` included
    when the space lists it), one label per slot: every cell of every cascade shares its alphas."""
    c = space.channels

    def make_cell() -> nn.Module:
        return ChainCell(["?"] * space.nodes, c, lambda k, _: LayerChoice(
            {name: bare_op(name, c) for name in space.ops}, label=chain_label(k)))

    return ChainBody(c, space.cells, make_cell, space.bias)


class Supernet(ModelSpace):
    """NNI model space of the searched network (cascades with k-space fusion) at the space's supernet point."""

    def __init__(self, space: SearchSpace, op_channels: int | None = None) -> None:
        super().__init__()
        if space.backbone == "chain":
            bodies = ([chain_super_body(space)] * space.cascades if space.shared
                      else [chain_super_body(space) for _ in range(space.cascades)])
        else:
            bodies = [super_body(space, op_channels) for _ in range(space.cascades)]
        self.net = CascadeNet(bodies)

    def forward(self, x: torch.Tensor, k0: torch.Tensor, mask: torch.Tensor,
                maps: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, k0, mask, maps)


def make_strategy(name: str, arch_lr: float, grad_clip: float | None, tau: tuple[float, float] = (10.0, 0.1),
                  lean: bool = True):
    """NNI one-shot strategy: DARTS (first order; darts2 swaps in the unrolled step in run.py), PC-DARTS (DARTS
    on PartialChannelCell), GDAS (NNI's GumbelDARTS, temperature tau[0] -> tau[1] linearly over the epochs) or
    random one-shot. `lean`: cells are LeanMixedCell (same result, less memory) instead of NNI's own."""
    s = strategy_of(name)
    hooks = [PartialChannelCell.mutate] if s.partial else [LeanMixedCell.mutate] if lean else []
    if s.nni == "darts":
        return DARTS(arc_learning_rate=arch_lr, gradient_clip_val=grad_clip, mutation_hooks=hooks)
    if s.nni == "gumbel":
        return GumbelDARTS(temperature=(float(tau[0]), float(tau[1])), arc_learning_rate=arch_lr,
                           gradient_clip_val=grad_clip, mutation_hooks=hooks)
    return RandomOneShot()


def sample_one_op(supernet: nn.Module) -> int:
    """GDAS: every Gumbel-softmax of the supernet draws a one-hot op per edge (straight-through gradient)."""
    return harden_gumbel(supernet)


def build_supernet(space: SearchSpace, strategy, partial: bool = False) -> Supernet:
    """Instantiate the model space and let the NNI strategy mutate it into a supernet (`partial`: PC-DARTS'
    ops on channels / K)."""
    if partial and space.backbone == "chain":
        chainable = ", ".join(s.name for s in strategies.STRATEGIES.values() if s.chain)
        raise ConfigError(f"--strategy pcdarts: partial channels are a dag cell's edge rule; space '{space.name}' "
                          f"is a chain space (use {chainable})")
    if partial and space.channels % PC_K:
        raise ConfigError(f"--strategy pcdarts: the space's channels ({space.channels}) must be a multiple of {PC_K}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = strategy.mutate_model(Supernet(space, space.channels // PC_K if partial else None))
    if space.backbone == "chain":  # ChainBody drew PyTorch's default init and its biases before the mutation
        return model
    for body in model.net.bodies:  # NNI builds the cell candidates during the mutation, after CellBody's init
        if space.bias:
            add_conv_biases(body)
        init_cell_network(body, body.out)
    return model


def first_cell(supernet: nn.Module) -> nn.Module:
    """The first (mutated) cell; all cells share its architecture parameters."""
    body = supernet.net.bodies[0]
    return body.blocks[0] if isinstance(body, ChainBody) else body.cells[0]


def op_names(supernet: nn.Module) -> list[str]:
    """The candidate ops in alpha order (a dag cell: real ops, NNI's implicit zero op last; a chain slot: the
    space's ops, `none` included)."""
    layers = mixed_layers(first_cell(supernet))
    return layer_names(layers[0]) if layers else list(first_cell(supernet).op_names)


def edge_alpha_map(supernet: nn.Module, space: SearchSpace) -> dict[tuple[int, int], torch.Tensor]:
    """(node, input) -> that cell edge's architecture parameter (ops in `op_names` order, NNI's zero op last);
    a chain cell: (k, k) -> op slot k's."""
    if space.backbone == "chain":
        slots = {m.label: alphas_of(m)[m.label] for m in mixed_layers(first_cell(supernet))}
        return {(k, k): slots[chain_label(k)] for k in range(space.nodes)}
    alphas = alphas_of(first_cell(supernet))
    return {(i, j): alphas[edge_key(i, j)] for i in range(space.nodes) for j in range(i + 2)}


def edge_alphas(supernet: nn.Module, space: SearchSpace) -> list[torch.Tensor]:
    """The architecture parameter of every cell edge, in (node, input) order."""
    return list(edge_alpha_map(supernet, space).values())


def edge_weights(supernet: nn.Module, space: SearchSpace) -> EdgeWeights:
    """Softmax weights per edge from NNI's alphas; NNI's implicit zero op is reported as `none`; PC-DARTS
    weights are multiplied by the edge's beta weight (its derivation rule)."""
    cell = first_cell(supernet)
    names = op_names(supernet)
    betas = None if space.backbone == "chain" else edge_betas(cell, space.nodes)
    out: EdgeWeights = {}
    for (i, j), alpha in edge_alpha_map(supernet, space).items():
        w = torch.softmax(alpha.detach().float().cpu(), 0).tolist()
        d = dict(zip(names, w[: len(names)], strict=True))
        d.setdefault("none", w[len(names)] if len(w) > len(names) else 0.0)
        if betas is not None:  # PC-DARTS: edge-normalised, op weight x the edge's beta weight
            d = {o: v * betas[(i, j)] for o, v in d.items()}
        out[(i, j)] = d
    return out


def arch_parameters(supernet: nn.Module) -> list[nn.Parameter]:
    """The distinct architecture parameters (shared across cells)."""
    seen: dict[int, nn.Parameter] = {}
    for m in supernet.modules():
        if has_alphas(m):
            for p in alphas_of(m).values():
                seen.setdefault(id(p), p)
    return list(seen.values())
