"""Supernet cells: a memory-lean DARTS cell and the PC-DARTS cell (partial channels, edge normalisation).

Both subclass NNI's DifferentiableMixedCell, so NNI's strategies, alphas and export work unchanged; they only
replace its forward, which stacks every op's output of an edge, appends a zeros tensor for the implicit
`none` op, and multiplies the stack by the weights: three full copies of the edge's outputs at once.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_recon.search.nni_api import (
    PREDECESSORS,
    DifferentiableMixedCell,
    alphas_of,
    beta_key,
    creation_memo,
    edge_key,
    edge_softmax,
    memo_key,
    preprocess_cell_inputs,
)

PC_K = 4  # PC-DARTS: 1/K of the channels go through the mixed op (K = 4 in the paper for CIFAR)


class LeanMixedCell(DifferentiableMixedCell):
    """DARTS cell computing each edge as a running weighted sum of its ops; `none` adds nothing.

    Same parameters, same alphas, same result as NNI's cell (a test holds them equal); autograd keeps each op's
    output once (for its alpha's gradient) instead of the stack, the zero-padded copy and the weighted product.
    """

    def edge(self, ops: nn.ModuleDict, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_k w_k op_k(x) over the real ops (the implicit zero op's weight multiplies zeros)."""
        out = None
        for k, op in enumerate(ops.values()):
            term = op(x) * weights[k]
            out = term if out is None else out + term
        return out

    def edge_scales(self, i: int) -> torch.Tensor | None:
        """Per-edge factors of node i's incoming edges (None: plain sum)."""
        return None

    def node_inputs(self, i: int, states: list[torch.Tensor]) -> torch.Tensor:
        """Node i's input: the sum of its incoming edges, each times its edge scale if any."""
        scales = self.edge_scales(i)
        total = None
        for j in range(i):
            w = edge_softmax(self, alphas_of(self)[edge_key(i - PREDECESSORS, j, self.label)])
            e = self.edge(self.ops[i - self.num_predecessors][j], states[j], w)
            if scales is not None:
                e = scales[j] * e
            total = e if total is None else total + e
        return total

    def forward(self, *inputs):
        processed = preprocess_cell_inputs(self.num_predecessors, *inputs)
        states: list[torch.Tensor] = self.preprocessor(processed)
        for i in range(self.num_predecessors, self.num_nodes + self.num_predecessors):
            states.append(self.node_inputs(i, states))
        return self.postprocessor(torch.cat(states[self.num_predecessors:], self.concat_dim), processed)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (B, g*c, H, W) -> interleave the g groups."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class PartialChannelCell(LeanMixedCell):
    """PC-DARTS cell: each edge mixes its ops on the first 1/K of the channels, passes the rest through, and
    shuffles channels; node inputs are the edges weighted by a softmax over per-node betas (edge normalisation).

    The betas live in the same ParameterDict as the alphas (`{label}/beta_{i}`), so NNI's architecture optimiser
    trains them and every cell sharing the label shares them.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        memo = creation_memo(args, kwargs)
        for i in range(self.num_predecessors, self.num_nodes + self.num_predecessors):
            key = beta_key(i - PREDECESSORS, self.label)
            if memo_key(key) not in memo:
                memo[memo_key(key)] = nn.Parameter(torch.randn(i) * 1e-3)
            alphas_of(self)[key] = memo[memo_key(key)]

    def export_probs(self, memo):
        """Edge ops' weights only (the betas are not op choices)."""
        return {k: v for k, v in super().export_probs(memo).items() if "/beta_" not in k}

    def edge(self, ops: nn.ModuleDict, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        part = x.shape[1] // PC_K
        mixed = super().edge(ops, x[:, :part], weights)
        return channel_shuffle(torch.cat([mixed, x[:, part:]], 1), PC_K)

    def edge_scales(self, i: int) -> torch.Tensor:
        """Edge normalisation: softmax over node i's betas."""
        return torch.softmax(alphas_of(self)[beta_key(i - PREDECESSORS, self.label)], 0)


def edge_betas(cell: nn.Module, nodes: int) -> dict[tuple[int, int], float] | None:
    """softmax(beta) per (node, input) of a PC-DARTS cell; None for other cells."""
    if not isinstance(cell, PartialChannelCell):
        return None
    out = {}
    for i in range(nodes):
        b = cell.edge_scales(i + cell.num_predecessors).detach().float().cpu()
        out.update({(i, j): float(b[j]) for j in range(len(b))})
    return out
