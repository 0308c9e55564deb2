"""The search's settings, each declared once (the CLI is generated from these fields); no heavy imports."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from nas_recon.data.coilmaps import estimator_option
from nas_recon.defaults import ACCELERATIONS, SIZE, SSDU_RHO, SSDU_SELECTIONS, SUPERVISIONS
from nas_recon.engine.record import RunRecord
from nas_recon.errors import ConfigError
from nas_recon.options import option
from nas_recon.search.selections import SELECTIONS as REGISTERED_SELECTIONS
from nas_recon.search.selections import selection as selection_of
from nas_recon.search.selections import selections_help
from nas_recon.search.strategies import STRATEGIES as REGISTERED
from nas_recon.search.strategies import strategy as strategy_of

STRATEGIES = tuple(REGISTERED)  # nas_recon.search.strategies: each strategy's traits, by name
SELECTIONS = tuple(REGISTERED_SELECTIONS)  # nas_recon.search.selections: each selection's traits, by name
PROPOSAL = REGISTERED_SELECTIONS["halving"].writes  # the DARTS stage's cell (the selection writes genotype.json)
COSTS = ("flops", "latency")
PRECISIONS = ("32", "bf16-mixed")  # float16 would need a gradient scaler for the alphas' separate optimiser
# settings that must match when a run is resumed
FIXED_ON_RESUME = ("data", "space", "seed", "strategy", "crop", "size", "batch_size", "max_slices", "split",
                   "lr", "arch_lr", "arch_weight_decay", "grad_clip", "mask_type", "accelerations", "repeats",
                   "layer_lr", "max_skips", "tau_max", "tau_min", "cost", "cost_weight", "cell_bias", "select",
                   "precision", "flops_target", "flops_band", "pool", "rungs", "eta", "recipe", "final_seeds",
                   "storage", "score_slices", "finalists", "supervision", "ssdu_rho", "ssdu_selection",
                   "coil_estimator")


@dataclass
class SearchConfig:
    """Everything a search run depends on (saved as run.json)."""

    data: str = option(help="data folder (its train/ subfolder is used if present)", kind="path", required=True)
    out: str = option(help="run folder", kind="path", required=True)
    space: str = option("paper_a", "shipped space name (paper_a, paper_b) or a TOML path")
    epochs: int = option(50, "maximum epochs (default 50)", kind="pos_int")
    patience: int = option(10, "stop when the genotype is unchanged this many epochs", kind="pos_int")
    crop: int | None = option(64, "random training crop (default 64; 0 = full image)", kind="nonneg_int",
                              zero_is_none=True)
    size: int = option(SIZE, f"pairing crop of the images (default {SIZE})", kind="size_int")
    batch_size: int = option(4, kind="pos_int")
    max_slices: int | None = option(None, "at most this many slices in each split", kind="nonneg_int")
    seed: int = option(0, kind="seed_int")
    device: str = "auto"
    strategy: str = option("darts", "; ".join(f"{s.name}: {s.help}" for s in REGISTERED.values()),
                           choices=STRATEGIES)
    split: float = option(0.5, "fraction of training volumes in train_w", kind="fraction")
    lr: float = option(1e-3, "weight learning rate (Adam)", kind="pos_float")
    arch_lr: float = option(3e-4, "architecture learning rate (Adam, betas 0.5/0.999)", kind="pos_float")
    arch_weight_decay: float = option(1e-3, kind="nonneg_float")
    grad_clip: float | None = option(5.0, "weight-gradient clip norm (0 = off)", kind="nonneg_float",
                                     zero_is_none=True)
    mask_type: str = "random"
    accelerations: list[float] = field(default_factory=lambda: list(ACCELERATIONS))
    candidates: int = option(16, "random strategy: cells scored at the end", kind="pos_int")
    repeats: int = option(1, "draws of each slice per epoch, each with its own crop and mask (more steps per epoch)",
                          kind="pos_int")
    decide_margin: float = option(0.02, "early stop needs every margin the cell depends on >= this softmax weight "
                                  "(and >= 2x the last epoch's drift)", kind="nonneg_float")
    layer_lr: bool = True  # per-conv Adam lr scaled by init std (nas_recon.models.init.layer_lr_groups)
    max_skips: int | None = option(None, "P-DARTS guard: at most this many skip_connect ops in the derived cell "
                                   "(the strongest kept)", kind="nonneg_int")
    tau_max: float = option(10.0, "gdas: temperature at the first epoch", kind="pos_float")
    tau_min: float = option(0.1, "gdas: temperature at the last epoch", kind="pos_float")
    cost: str | None = option(None, "cost-aware search: penalise each edge's expected op cost, from conv MACs "
                              "(thop) or from per-op latency measured on the search device (cached in --out as "
                              "op_costs.json)", choices=COSTS)
    cost_weight: float = option(0.0, "weight L of the cost penalty (the expected cell cost relative to its dearest "
                                "form, in [0, 1]) added to the architecture loss; sweep it for a quality-cost front",
                                kind="nonneg_float")
    cell_bias: bool = option(False, "outside SPEC's contract (bias-free cells): give every conv of the supernet a "
                             "zero-initialised bias; the genotype records it and the retrained network has them "
                             "too (see BENCHMARKS.md)", flag=True)
    select: str = option("alpha", selections_help(), choices=SELECTIONS)
    precision: str = option("32", "32 (default) or bf16-mixed: the supernet under autocast, FFTs, fusion and "
                            "losses in float32", choices=PRECISIONS)
    maps_dir: str | None = option(None, "multi-coil: folder caching the ESPIRiT maps (default OUT/maps); runs on "
                                  "the same data may share one", kind="path")
    coil_estimator: str = estimator_option()
    flops_target: str | None = option(None, "a FLOPs budget as a constraint: G (conv MACs at 320 x 320, e.g. 17.3) or "
                                      "like:MODEL (e.g. like:dccnn-3, or a genotype JSON); the derived cell and every "
                                      "candidate lie inside the band", kind="str")
    flops_band: float = option(0.05, "half-width of the FLOPs band, relative to the target (default 0.05)",
                               kind="fraction")
    pool: int = option(18, "halving: candidates in the pool (the DARTS cell, the space's handcrafted points, cells "
                       "drawn from the op weights, macro draws, random draws)", kind="pos_int")
    rungs: int = option(2, "halving: rungs of growing retraining budget (the last is the recipe's epochs; the first "
                        "is 1/eta^(rungs-1) of it)", kind="pos_int")
    eta: int = option(3, "halving: reduction factor (each rung keeps the best 1/eta and trains eta x longer)",
                      kind="pos_int")
    recipe: str = option("standard", "halving: the trials' retraining recipe (shipped name or TOML path)", kind="str")
    finalists: int = option(3, "halving: the last rung's best, retrained with the other seeds", kind="pos_int")
    final_seeds: int = option(2, "halving: seeds each finalist is retrained with (the winner: best mean)",
                              kind="pos_int")
    score_slices: int = option(64, "halving: validation slices a trial is scored on (evenly spaced, each at every "
                               "acceleration; 0 = all)", kind="nonneg_int")
    storage: str | None = option(None, "halving: the Optuna study's storage (default sqlite in OUT/selection; "
                                 "postgresql://..., mysql://... or journal:PATH lets several processes or machines "
                                 "work on one study)", kind="str")
    supervision: str = option("full", "full: search on fully sampled references; ssdu: self-supervised on "
                              "undersampled files (nas-recon data undersample writes them): both splits and the "
                              "selection's trials take SSDU's loss on held-out k-space", choices=SUPERVISIONS)
    ssdu_rho: float = option(SSDU_RHO, f"ssdu: share of the acquired columns held out for the loss (default "
                             f"{SSDU_RHO})", kind="fraction")
    ssdu_selection: str = option("uniform", "ssdu: how the held-out columns are drawn outside the centre",
                                 choices=SSDU_SELECTIONS)
    workers: int = 1  # halving: local worker processes (one per GPU, per group of CPU cores); not fixed on resume

    def check(self) -> None:
        """Raise ConfigError naming the first bad option."""
        strat = strategy_of(self.strategy)
        if not self.tau_max >= self.tau_min > 0:
            raise ConfigError(f"--tau-max/--tau-min: expected tau_max >= tau_min > 0, got {self.tau_max}, "
                              f"{self.tau_min}")
        for name in ("epochs", "patience", "batch_size", "candidates", "repeats"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")
        if not 0 < self.split < 1:
            raise ConfigError(f"--split: expected a fraction in (0, 1), got {self.split}")
        for name in ("lr", "arch_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')}: expected a positive number")
        if self.cost is not None and self.cost not in COSTS:
            raise ConfigError(f"--cost: unknown '{self.cost}', expected {', '.join(COSTS)}")
        if not (math.isfinite(self.cost_weight) and self.cost_weight >= 0):
            raise ConfigError(f"--cost-weight: expected a finite number >= 0, got {self.cost_weight}")
        if self.cost_weight > 0 and (self.cost is None or not strat.bilevel):
            raise ConfigError("--cost-weight: needs --cost flops|latency and a darts, darts2 or gdas search")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision: search takes 32 or bf16-mixed, got '{self.precision}' (float16 would "
                              "need a gradient scaler for the alphas' separate optimiser)")
        sel = selection_of(self.select)
        if sel.perturbation and not strat.perturb:
            raise ConfigError(f"--select {self.select}: needs a darts, darts2 or pcdarts search (got --strategy "
                              f"{self.strategy}, whose supernet samples its ops)")
        if not strat.bilevel and (self.max_skips is not None or self.cost is not None):
            raise ConfigError("--strategy random: scores sampled cells as they are, so --max-skips and --cost would "
                              "be ignored; leave them out or use darts, darts2, gdas or pcdarts")
        if self.max_skips is not None and self.max_skips < 0:
            raise ConfigError(f"--max-skips: expected an integer >= 0, got {self.max_skips}")
        if not 0 <= self.decide_margin < 1:
            raise ConfigError(f"--decide-margin: expected a softmax-weight margin in [0, 1), got {self.decide_margin}")
        if self.supervision not in SUPERVISIONS:
            raise ConfigError(f"--supervision: unknown '{self.supervision}', expected {' or '.join(SUPERVISIONS)}")
        if not 0 < self.ssdu_rho < 1:
            raise ConfigError(f"--ssdu-rho: expected a fraction in (0, 1), got {self.ssdu_rho:g}")
        if not 0 < self.flops_band < 1:
            raise ConfigError(f"--flops-band: expected a fraction in (0, 1), got {self.flops_band:g}")
        halving = sel.retrains
        if halving and self.flops_target is None:
            raise ConfigError(f"--select {self.select}: needs --flops-target (the band every candidate lies in)")
        for name, default in (("pool", 18), ("rungs", 2), ("eta", 3), ("recipe", "standard"), ("final_seeds", 2),
                              ("storage", None), ("workers", 1), ("score_slices", 64), ("finalists", 3)):
            if not halving and getattr(self, name) != default:
                raise ConfigError(f"--{name.replace('_', '-')}: a setting of --select halving; this search derives "
                                  f"by --select {self.select}")


# search's run.json: a key an older record lacks had its default
# NNI's one-shot module holds the task (and its supernet) as `training_module`; before the one checkpoint format a
# search kept Lightning's checkpoints/last.ckpt
RECORD = RunRecord("search", FIXED_ON_RESUME, asdict(SearchConfig(data="", out="")), "search", "search",
                   prefix="training_module.", legacy=("checkpoints/last.ckpt",))
