"""The one builder from a genotype to a plain nn.Module (used by search export, retrain, cost, report).

Two backbones: `dag`, the paper's cells of nodes (SPEC section 2), and `chain`, residual cells of chained ops
inside DC-CNN's body (head conv, cells, tail conv), DC-CNN's residual block being the chain conv_3x3 > conv_3x3.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from nas_recon.genotype import Genotype
from nas_recon.models.cascade import CascadeNet
from nas_recon.models.init import add_conv_biases, init_cell_network
from nas_recon.physics.fusion import CG_ITERATIONS
from nas_recon.space.ops import build_op


def conv3x3(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution, size-preserving."""
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


def preprocess(cin: int, cout: int) -> nn.Sequential:
    """A cell input's preprocessing: ReLU -> 1x1 conv to C channels, no bias."""
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(cin, cout, 1, bias=False))


def cell_input_channels(channels: int, nodes: int, cell_index: int) -> tuple[int, int]:
    """Channels of C_{l-2} and C_{l-1} for cell `cell_index` (stem outputs have C, cells nodes*C)."""
    c_pp = channels if cell_index < 2 else nodes * channels
    c_p = channels if cell_index < 1 else nodes * channels
    return c_pp, c_p


class DerivedCell(nn.Module):
    """A discrete cell: two preprocessed inputs, nodes of two ops each, output = concat of nodes."""

    def __init__(self, genotype: Genotype, c_pp: int, c_p: int) -> None:
        super().__init__()
        c = genotype.channels
        self.pre0 = preprocess(c_pp, c)
        self.pre1 = preprocess(c_p, c)
        self.ops = nn.ModuleList()
        self.idx: list[int] = []
        for node in genotype.cell:
            for j, op in zip(node.inputs, node.ops, strict=True):
                self.ops.append(build_op(op, c))
                self.idx.append(j)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        acc = states[0]
        for k, op in enumerate(self.ops):
            y = op(states[self.idx[k]])
            if k % 2 == 0:
                acc = y
            else:
                states.append(acc + y)
        return torch.cat(states[2:], dim=1)


class CellBody(nn.Module):
    """One reconstruction module D(x) = x + body(x): stem (two 3x3), cells, 3x3 from the concat.

    `make_cell(c_pp, c_p)` builds each cell; the searched net uses DerivedCell, the supernet NNI's Cell.
    `bias`: every conv gets a zero-initialised bias (the opt-in `cell_bias`; SPEC's contract is bias-free).
    """

    def __init__(self, channels: int, nodes: int, cells: int, make_cell: Callable[[int, int], nn.Module],
                 init: str = "scaled", bias: bool = False) -> None:
        super().__init__()
        self.stem0 = conv3x3(2, channels)
        self.stem1 = conv3x3(channels, channels)
        self.cells = nn.ModuleList(make_cell(*cell_input_channels(channels, nodes, i)) for i in range(cells))
        self.out = conv3x3(nodes * channels, 2)
        if bias:
            add_conv_biases(self)
        if init == "scaled":
            init_cell_network(self, self.out)
        elif init != "torch":
            raise ValueError(f"init: unknown '{init}', expected scaled or torch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return x + self.out(s1)


class SearchedBody(CellBody):
    """CellBody of derived cells."""

    def __init__(self, genotype: Genotype, init: str = "scaled") -> None:
        super().__init__(genotype.channels, genotype.nodes, genotype.cells,
                         lambda c_pp, c_p: DerivedCell(genotype, c_pp, c_p), init, genotype.bias)


def bare_op(name: str, channels: int) -> nn.Module:
    """A registered op without its leading ReLU (a chain cell puts one ReLU between its ops)."""
    op = build_op(name, channels)
    if isinstance(op, nn.Sequential) and isinstance(op[0], nn.ReLU):
        return nn.Sequential(*list(op)[1:])
    return op


class ChainCell(nn.Module):
    """y + op_n(relu(... relu(op_1(y)))): with two dense 3x3 convs, DC-CNN's residual block."""

    def __init__(self, ops: list[str], channels: int, make_op: Callable[[int, str], nn.Module] | None = None) -> None:
        super().__init__()
        make = make_op or (lambda k, name: bare_op(name, channels))
        self.ops = nn.ModuleList(make(k, name) for k, name in enumerate(ops))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        z = y
        for k, op in enumerate(self.ops):
            z = op(torch.relu(z) if k else z)
        return y + z


class ChainBody(nn.Module):
    """D(x) = x + tail(cells(relu(head(x)))): DC-CNN's body with chain cells (its layers in its order)."""

    def __init__(self, channels: int, cells: int, make_cell: Callable[[], nn.Module], bias: bool = True) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # the layers are drawn below, in module order
            self.head = conv3x3(2, channels, bias=bias)
            self.blocks = nn.Sequential(*[make_cell() for _ in range(cells)])
            self.tail = conv3x3(channels, 2, bias=bias)
            if bias:
                add_conv_biases(self.blocks)
        for m in self.modules():  # PyTorch's default init, each conv's weight then bias: as nn.Conv2d draws them
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.tail(self.blocks(torch.relu(self.head(x))))


def chain_body(genotype: Genotype) -> ChainBody:
    """One chain reconstruction module of a genotype (PyTorch's default init, as the baselines it generalises)."""
    ops = [n.ops[0] for n in genotype.cell]
    return ChainBody(genotype.channels, genotype.cells, lambda: ChainCell(ops, genotype.channels), genotype.bias)


def build_from_genotype(genotype: Genotype, lam: float = math.inf, learnable_lam: bool = False,
                        init: str = "scaled", cg_iterations: int = CG_ITERATIONS) -> CascadeNet:
    """Searched network: `cascades` x [body -> k-space fusion], each cascade its own body unless `shared`.

    `init` (dag bodies): "scaled" (nas_recon.models.init, the default) or "torch" (PyTorch's defaults, for
    comparison); chain bodies keep PyTorch's defaults, as DC-CNN and MoDL. A genotype's `dc = "soft"` makes the
    data-consistency weight learnt (started at 1), as `--soft-dc` does.
    """
    if genotype.dc == "soft" and math.isinf(lam):
        lam, learnable_lam = 1.0, True

    def body() -> nn.Module:
        return chain_body(genotype) if genotype.chain else SearchedBody(genotype, init)

    bodies = [body()] * genotype.cascades if genotype.shared else [body() for _ in range(genotype.cascades)]
    return CascadeNet(bodies, lam, learnable_lam, cg_iterations)
