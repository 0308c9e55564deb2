"""Supernet cells: a memory-lean DARTS cell and the PC-DARTS cell (partial channels, edge normalisation).

Both subclass NNI's DifferentiableMixedCell, so NNI's strategies, alphas and export work unchanged; they only
replace its forward, which stacks every op's output of an edge, appends a zeros tensor for the implicit
`none` op, and multiplies the stack by the weights: three full copies of the edge's outputs at once.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

with warnings.catch_warnings():  # NNI 3.0 warns about classes newer torch releases added
    warnings.simplefilter("ignore")
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell
    from nni.nas.oneshot.pytorch.supermodule.sampling import preprocess_cell_inputs

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
            w = self._softmax(self._arch_alpha[f"{self.label}/{i}_{j}"])
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
        memo = args[7] if len(args) > 7 else kwargs["memo"]
        for i in range(self.num_predecessors, self.num_nodes + self.num_predecessors):
            key = f"{self.label}/beta_{i}"
            if key + "/in_cell" not in memo:
                memo[key + "/in_cell"] = nn.Parameter(torch.randn(i) * 1e-3)
            self._arch_alpha[key] = memo[key + "/in_cell"]

    def export_probs(self, memo):
        """Edge ops' weights only (the betas are not op choices)."""
        return {k: v for k, v in super().export_probs(memo).items() if "/beta_" not in k}

    def edge(self, ops: nn.ModuleDict, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        part = x.shape[1] // PC_K
        mixed = super().edge(ops, x[:, :part], weights)
        return channel_shuffle(torch.cat([mixed, x[:, part:]], 1), PC_K)

    def edge_scales(self, i: int) -> torch.Tensor:
        """Edge normalisation: softmax over node i's betas."""
        return torch.softmax(self._arch_alpha[f"{self.label}/beta_{i}"], 0)


def edge_betas(cell: nn.Module, nodes: int) -> dict[tuple[int, int], float] | None:
    """softmax(beta) per (node, input) of a PC-DARTS cell; None for other cells."""
    if not isinstance(cell, PartialChannelCell):
        return None
    out = {}
    for i in range(nodes):
        b = cell.edge_scales(i + cell.num_predecessors).detach().float().cpu()
        out.update({(i, j): float(b[j]) for j in range(len(b))})
    return out
