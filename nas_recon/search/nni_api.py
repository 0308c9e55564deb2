"""The one adapter to NNI: every NNI import and every use of its internals (NNI 3.0) lives here.

NNI has had no release since 3.0 (2023) and nas-recon relies on parts of it that are not public API: a mutated
cell's alpha dict and softmax, its constructor's `memo` position, the edge/memo/sample label strings, the
Gumbel-softmax module's `hard` flag, the one-shot module's architecture-optimiser hooks and the 2i / 2i + 1
step convention of its training step. `check_nni()` verifies each of them and names the one that changed.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from nas_recon.errors import NasReconError

with warnings.catch_warnings():  # NNI 3.0 warns about classes newer torch releases added
    warnings.simplefilter("ignore")
    import nni
    from nni.nas.nn.pytorch import Cell, LayerChoice, ModelSpace
    from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
    from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
    from nni.nas.oneshot.pytorch.supermodule.differentiable import (
        DifferentiableMixedCell,
        DifferentiableMixedLayer,
        GumbelSoftmax,
    )
    from nni.nas.oneshot.pytorch.supermodule.sampling import preprocess_cell_inputs
    from nni.nas.strategy import DARTS, GumbelDARTS, RandomOneShot

__all__ = ["Cell", "DARTS", "DartsLightningModule", "DifferentiableMixedCell", "GumbelDARTS", "LayerChoice",
           "ModelSpace", "RandomOneShot", "preprocess_cell_inputs"]

SUPPORTED = "3.0"
CELL_LABEL = "cell"  # one label: every cell of every cascade shares its architecture parameters
CHAIN_LABEL = "chainop"  # chain cells: op slot k of every cell of every cascade is one LayerChoice, `chainop{k}`
PREDECESSORS = 2  # NNI numbers a cell's nodes after its two inputs: our node i is NNI's node i + 2
MEMO_POSITION = 7  # DifferentiableMixedCell(op_factory, ..., concat_dim, memo, ...): memo's positional index


def edge_key(node: int, source: int, label: str = CELL_LABEL) -> str:
    """NNI's alpha key of the edge from state `source` into our node `node`."""
    return f"{label}/{node + PREDECESSORS}_{source}"


def beta_key(node: int, label: str = CELL_LABEL) -> str:
    """The alpha-dict key of PC-DARTS' edge-normalisation betas of our node `node`."""
    return f"{label}/beta_{node + PREDECESSORS}"


def memo_key(key: str) -> str:
    """NNI's memo key for a parameter created inside a cell (shared by cells with the same label)."""
    return key + "/in_cell"


def sample_of(cell: Iterable[tuple[tuple[int, ...], tuple[str, ...]]], label: str = CELL_LABEL) -> dict[str, Any]:
    """NNI path-sampling choices for a cell given as (inputs, ops) per node."""
    sample: dict[str, Any] = {}
    for i, (inputs, ops) in enumerate(cell):
        for k, (j, op) in enumerate(zip(inputs, ops, strict=True)):
            sample[f"{label}/op_{i + PREDECESSORS}_{k}"] = op
            sample[f"{label}/input_{i + PREDECESSORS}_{k}"] = [j]
    return sample


def chain_label(slot: int) -> str:
    """The LayerChoice label of a chain cell's op slot (NNI labels may not hold a slash)."""
    return f"{CHAIN_LABEL}{slot}"


def chain_sample(ops: Iterable[str]) -> dict[str, Any]:
    """NNI path-sampling choices of a chain cell's ops."""
    return {chain_label(k): op for k, op in enumerate(ops)}


def alphas_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """A mutated cell's architecture parameters (alphas, and PC-DARTS' betas), by key; a mutated LayerChoice's
    one alpha under its label."""
    if isinstance(module, DifferentiableMixedLayer):
        return {module.label: module._arch_alpha}
    return module._arch_alpha


def layer_names(layer: nn.Module) -> list[str]:
    """A mutated LayerChoice's candidate names, in its alpha's order."""
    return list(layer.names)


def mixed_layers(model: nn.Module) -> list[nn.Module]:
    """Every mutated (differentiable) LayerChoice of a model."""
    return [m for m in model.modules() if isinstance(m, DifferentiableMixedLayer)]


def has_alphas(module: nn.Module) -> bool:
    """True for NNI's differentiable mixed modules (they hold architecture parameters)."""
    return hasattr(module, "_arch_alpha")


def edge_softmax(cell: nn.Module, alpha: torch.Tensor) -> torch.Tensor:
    """The cell's own softmax of an edge's alpha (GDAS: NNI's Gumbel-softmax module)."""
    return cell._softmax(alpha)


def creation_memo(args: tuple, kwargs: dict) -> dict:
    """The `memo` a DifferentiableMixedCell subclass's __init__ received (positional or keyword)."""
    return args[MEMO_POSITION] if len(args) > MEMO_POSITION else kwargs["memo"]


def is_arch_step(batch_idx: int) -> bool:
    """NNI's DARTS calls the inner training_step with 2i for the architecture step and 2i + 1 for weights."""
    return batch_idx % 2 == 0


def weight_step_index(batch_idx: int) -> int:
    """The index NNI's DARTS passes to the inner training_step for batch `batch_idx`'s weight step."""
    return 2 * batch_idx + 1


def harden_gumbel(supernet: nn.Module) -> int:
    """GDAS: every Gumbel-softmax of the supernet draws a one-hot op (straight-through); returns how many."""
    mods = [m for m in supernet.modules() if isinstance(m, GumbelSoftmax)]
    for m in mods:
        m.hard = True
    return len(mods)


def resample(supernet: nn.Module, sample: dict[str, Any]) -> None:
    """Fix every path-sampling module of the supernet to `sample` (random one-shot)."""
    for m in supernet.modules():
        if isinstance(m, BaseSuperNetModule):
            m.resample(memo=dict(sample))


def pin_arch_optimizer(oneshot: nn.Module, params: list[nn.Parameter],
                       make: Callable[[list[nn.Parameter]], torch.optim.Optimizer]) -> None:
    """Give NNI's one-shot module a fixed order of architecture parameters and our optimiser for them.

    NNI orders them through a set (id order), so a resumed optimiser state could land on other alphas.
    """
    oneshot.arch_parameters = lambda: params  # type: ignore[method-assign]
    oneshot.configure_architecture_optimizers = lambda: make(params)  # type: ignore[method-assign]


def _fail(what: str) -> None:
    raise NasReconError(f"NNI {getattr(nni, '__version__', '?')}: {what}; nas-recon is written against NNI "
                        f"{SUPPORTED}'s internals (pip install 'nni=={SUPPORTED}')")


@functools.cache
def check_nni() -> None:
    """Verify every NNI internal this adapter uses on a tiny supernet; a clear error names what changed.

    Cached: run once per process (search calls it before anything is written).
    """
    params = list(inspect.signature(DifferentiableMixedCell.__init__).parameters)[1:]
    if len(params) <= MEMO_POSITION or params[MEMO_POSITION] != "memo":
        _fail(f"DifferentiableMixedCell.__init__ no longer takes 'memo' at position {MEMO_POSITION} ({params})")
    for name in ("arch_parameters", "configure_architecture_optimizers", "architecture_optimizers", "resample",
                 "advance_optimization", "advance_lr_schedulers"):
        if not callable(getattr(DartsLightningModule, name, None)):
            _fail(f"DartsLightningModule.{name} is gone")
    step = inspect.getsource(DartsLightningModule.training_step)
    if "2 * batch_idx)" not in step or "2 * batch_idx + 1)" not in step:
        _fail("DartsLightningModule.training_step no longer passes 2i / 2i + 1 to the inner training step")
    if not hasattr(GumbelSoftmax(), "hard"):
        _fail("GumbelSoftmax has no 'hard' flag")
    net = mutate(DARTS(), CellProbe())
    cell = net.cell
    if not has_alphas(cell) or not isinstance(alphas_of(cell), nn.ParameterDict):
        _fail("a mutated cell has no '_arch_alpha' ParameterDict")
    keys = {edge_key(0, j) for j in range(PREDECESSORS)}
    if set(alphas_of(cell)) != keys:
        _fail(f"a cell's alpha keys are {sorted(alphas_of(cell))}, expected {sorted(keys)}")
    if not callable(getattr(cell, "_softmax", None)) or list(getattr(cell, "op_names", [])) != ["conv_3x3",
                                                                                               "skip_connect"]:
        _fail("a mutated cell lacks '_softmax' or 'op_names'")
    if len(alphas_of(cell)[edge_key(0, 0)]) != len(cell.op_names) + 1:
        _fail("an edge's alpha no longer has one entry per op plus the implicit zero op")
    try:
        resample(mutate(RandomOneShot(), CellProbe()), sample_of([((0, 1), ("conv_3x3", "skip_connect"))]))
    except Exception as e:  # noqa: BLE001 - any failure means the sample keys changed
        _fail(f"path sampling refused the sample keys ({type(e).__name__}: {e})")
    layers = mixed_layers(mutate(DARTS(), ChainProbe()))
    if len(layers) != 2 or not all(isinstance(getattr(m, "_arch_alpha", None), nn.Parameter) for m in layers):
        _fail("a mutated LayerChoice is not a DifferentiableMixedLayer holding its alpha as '_arch_alpha'")
    if [m.label for m in layers] != [chain_label(0), chain_label(1)] or layer_names(layers[0]) != list(PROBE_OPS):
        _fail("a mutated LayerChoice lost its label or its candidate names")
    try:
        resample(mutate(RandomOneShot(), ChainProbe()), chain_sample(("conv_3x3", "skip_connect")))
    except Exception as e:  # noqa: BLE001 - any failure means the sample keys changed
        _fail(f"path sampling refused a LayerChoice's label ({type(e).__name__}: {e})")


PROBE_OPS = ("conv_3x3", "skip_connect", "none")


def mutate(strategy: Any, space: nn.Module) -> nn.Module:
    """A strategy's supernet of a model space, NNI's warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return strategy.mutate_model(space)


class CellProbe(ModelSpace):
    """A one-node NNI cell over two inputs (conv_3x3 or skip per edge): what check_nni mutates, built with NNI
    alone so that the check needs none of the supernet's code."""

    def __init__(self) -> None:
        super().__init__()
        from nas_recon.space.ops import build_op

        def factory(name: str):
            return lambda node_index, op_index, input_index=None: build_op(name, 4)

        self.cell = Cell({n: factory(n) for n in PROBE_OPS[:2]}, num_nodes=1, num_ops_per_node=2,
                         num_predecessors=2, merge_op="all", label=CELL_LABEL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell([x, x])


class ChainProbe(ModelSpace):
    """Two chained NNI LayerChoices labelled as a chain cell's op slots."""

    def __init__(self) -> None:
        super().__init__()
        from nas_recon.space.ops import build_op

        self.slots = nn.ModuleList(LayerChoice({n: build_op(n, 4) for n in PROBE_OPS}, label=chain_label(k))
                                   for k in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for slot in self.slots:
            x = slot(x)
        return x
