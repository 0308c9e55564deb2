"""Perturbation-based selection (DARTS-PT, Wang et al. ICLR 2021), without the fine-tuning between decisions.

The DARTS rule ranks ops by their softmax weight, which Wang et al. show is a poor proxy for what an op
contributes to the supernet. Here an op's importance on an edge is how much the supernet's L1 loss on fixed
train_alpha batches rises when that op alone is removed from the edge (its alpha set to -inf, so the edge's
other ops share the weight). The derivation rule is then the paper's with importance in place of weight: per
edge its most important op, per node the two edges whose best op matters most.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from nas_recon.search.derive import EdgeWeights

LossFn = Callable[[nn.Module], float]


@torch.no_grad()
def op_importance(alphas: Mapping[tuple[int, int], torch.Tensor], op_names: Sequence[str], loss: LossFn,
                  model: nn.Module) -> tuple[EdgeWeights, float]:
    """importance[(node, input)][op] = loss(model without that op on that edge) - loss(model); and the loss.

    `alphas`: (node, input) -> that edge's architecture parameter (`edge_alpha_map`), real ops first in
    `op_names` order; each is restored after its perturbations.
    """
    base = loss(model)
    out: EdgeWeights = {}
    for edge, a in alphas.items():
        saved = a.detach().clone()
        scores = {}
        for o, name in enumerate(op_names):
            a[o] = float("-inf")
            scores[name] = loss(model) - base
            a.copy_(saved)
        out[edge] = scores
    return out, base
