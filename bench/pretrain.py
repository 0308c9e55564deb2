"""Benchmark (not a test): contrastive pretraining (Self-MRI's SimCLR) then fine-tuning on 10 % of the references,
against training from scratch on the same 10 % (issue 31).

On the demo data of a `bench/search_pays.py` folder: the U-Net's encoder is pretrained on the views of
OUT/ssdu/data-4x/train (train/ undersampled at 4x by bench/ssdu.py: no reference is read); then the U-Net is
retrained on the fully sampled OUT/data with only 10 % of the training slices (evenly spaced, the recipe's
max_slices), from the pretrained encoder and from scratch, 3 seeds each, under the budget's recipe (fastMRI's U-Net
protocol). All are evaluated on the same test/ at 4x and 8x.

Resumable (finished runs are skipped). Prints the table and the mean difference; writes OUT/pretrain/summary.json.

--tag names another pretraining (OUT/pretrain/MODEL-simclrTAG and its fine-tunings), e.g. a longer one; the
scratch runs are shared. --freeze S fine-tunes with the encoder frozen for the first share S of the epochs (retrain
--init-freeze: linear probing, then fine-tuning); --ft-epochs N trains both arms N epochs instead of the recipe's.
--rescale fine-tunes from a copy of the encoder whose conv weights are scaled back to the norms of a fresh
initialisation: the U-Net's convs have no bias and feed an instance norm, so the network computes the same, but
Adam's relative steps on those weights are those of a fresh network again.

Usage: python bench/pretrain.py --out PAYS_OUT [--budget standard] [--epochs 30] [--batch 8] [--seeds 0 1 2]
                                [--tag -e200] [--freeze 0.5] [--ft-epochs 48] [--rescale]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from stagelog import Log

from nas_recon.data.dataset import list_volumes
from nas_recon.data.hdf5 import inspect_volume
from nas_recon.engine.checkpoint import save_checkpoint
from nas_recon.models.registry import ModelSpec, build_model
from nas_recon.pipelines.demo import BUDGETS, budget_recipe
from nas_recon.report.build import label_runs, make_report, read_run
from nas_recon.runtime import configure
from nas_recon.train.config import PretrainConfig, RetrainConfig
from nas_recon.train.pretrain import PRETRAINED, run_pretrain
from nas_recon.train.pretrain import RECORD as PRETRAIN
from nas_recon.train.recipe import with_overrides
from nas_recon.train.retrain import run_retrain

ACCS = ("4x", "8x")


def finished(run: Path, epochs: int) -> bool:
    """A retrain folder that holds all its epochs."""
    log = run / "train_log.csv"
    return log.is_file() and log.read_text().strip().splitlines()[-1].split(",")[0] == str(epochs)


def rescaled(pre: Path, model: str) -> Path:
    """PRE's encoder.pt with every 4-d (conv) weight scaled to the norm of a fresh network's (seed 0), as
    PRE-rescaled/encoder.pt; the function is unchanged where an instance norm without affine follows a bias-free
    conv, which is checked here on a probe image."""
    out = pre.parent / f"{pre.name}-rescaled"
    if (out / PRETRAINED).is_file():
        return out
    ck = torch.load(pre / PRETRAINED, weights_only=False)
    torch.manual_seed(0)
    fresh = build_model(ModelSpec(model)).state_dict()
    sd = dict(ck["state_dict"])
    for k in ck["encoder_keys"]:
        if sd[k].dim() == 4:
            sd[k] = sd[k] * (fresh[k].norm() / sd[k].norm())
    net_a, net_b = build_model(ModelSpec(model)), build_model(ModelSpec(model))
    net_a.load_state_dict(ck["state_dict"])
    net_b.load_state_dict(sd)
    x = torch.rand(1, 2, 64, 64, generator=torch.Generator().manual_seed(0))
    args = (x, torch.zeros_like(x), torch.ones(1, 1, 1, 64))
    with torch.no_grad():
        diff = float((net_a.eval()(*args) - net_b.eval()(*args)).abs().max())
    if diff > 1e-3:
        raise SystemExit(f"rescaling changed the network's output by {diff:g}: its convs are not scale-invariant")
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / PRETRAINED, {k: v for k, v in {**ck, "state_dict": sd}.items()
                                       if k not in ("format", "sha256", "version", "package_version")})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="a bench/search_pays.py output folder (after bench/ssdu.py)")
    p.add_argument("--budget", default="standard", choices=sorted(BUDGETS))
    p.add_argument("--model", default="unet")
    p.add_argument("--epochs", type=int, default=30, help="pretraining epochs")
    p.add_argument("--share", type=float, default=0.1, help="share of the training slices with a reference")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch", type=int, default=8, help="pretraining slices per batch (2 x this many views)")
    p.add_argument("--tag", default="", help="names this pretraining and its fine-tunings")
    p.add_argument("--freeze", type=float, default=0.0, help="share of the fine-tuning epochs the encoder is frozen")
    p.add_argument("--ft-epochs", type=int, default=0, help="fine-tuning epochs (0: the recipe's)")
    p.add_argument("--rescale", action="store_true", help="conv weights at a fresh initialisation's norms")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    configure()
    b = BUDGETS[a.budget]
    say = Log()
    data = a.out / "data"
    under = a.out / "ssdu" / "data-4x"
    root = a.out / "pretrain"
    pre = root / f"{a.model}-simclr{a.tag}"
    log = pre / "pretrain_log.csv"
    if not (pre / PRETRAINED).is_file() or not log.is_file() or log.read_text().count("\n") <= a.epochs:
        say.stage(f"pretraining the {a.model} encoder ({a.epochs} epochs) on {under / 'train'}")
        t = time.time()
        run_pretrain(PretrainConfig(str(under), str(pre), a.model, epochs=a.epochs, batch_size=a.batch,
                                    size=b.size, seed=0, device=a.device), resume=PRETRAIN.resumable(pre) is not None)
        say.stage(f"pretrained in {time.time() - t:.0f} s")
    slices = sum(inspect_volume(v).num_slices for v in list_volumes(data / "train"))
    few = max(1, round(a.share * slices))
    recipe = with_overrides(budget_recipe(b), {"max_slices": few, **({"epochs": a.ft_epochs} if a.ft_epochs else {})},
                            f"--share {a.share}")
    longer = f"-ft{a.ft_epochs}" if a.ft_epochs else ""
    frozen = f"-f{a.freeze:g}" if a.freeze else ""
    if a.rescale:
        pre, frozen = rescaled(pre, a.model), f"{frozen}-rescaled"
    runs = {}
    for seed in a.seeds:
        for arm, init in (("scratch", None), ("pretrained", str(pre))):
            tag = f"{a.tag}{frozen}" if init else ""
            run = root / f"{a.model}-{arm}-{few}slices{tag}{longer}-s{seed}"
            if not finished(run, recipe.epochs):
                say.stage(f"retraining {a.model} {arm} on {few} of {slices} slices, seed {seed}")
                run_retrain(RetrainConfig(str(data), str(run), recipe, model=a.model, seed=seed, device=a.device,
                                          size=b.size, init=init, init_freeze=(a.freeze or None) if init else None),
                            resume=(run / "run.json").is_file())
            runs[(arm, seed)] = run
    say.stage("evaluate + report")
    name = f"{a.tag}{frozen}{longer}"
    rep = make_report(list(runs.values()), root / f"report{name}", data / "test", b.size, b.eval_crop,
                      b.eval_max_slices, a.device, 0, ("zero-filled",), notes=[f"bench/pretrain.py budget {a.budget}"])
    read = [read_run(r) for r in runs.values()]
    label_runs(read)
    label = {r["path"].resolve(): r["label"] for r in read}
    by = {(r["model"], r["acceleration"]): r for r in rep["rows"]}
    fig = {k: {acc: (by[(label[d.resolve()], acc)]["psnr"]["mean"], by[(label[d.resolve()], acc)]["ssim"]["mean"])
               for acc in ACCS} for k, d in runs.items()}
    print(f"\n{a.model} on {few} of {slices} training slices | seed | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x")
    for (arm, seed), f in sorted(fig.items()):
        print(f"{arm} | {seed} | {f['4x'][0]:.2f} | {f['4x'][1]:.4f} | {f['8x'][0]:.2f} | {f['8x'][1]:.4f}")
    zf = {acc: by[("zero-filled", acc)]["psnr"]["mean"] for acc in ACCS}
    print(f"zero-filled | - | {zf['4x']:.2f} | | {zf['8x']:.2f} |")
    diff = {acc: [fig[("pretrained", s)][acc][0] - fig[("scratch", s)][acc][0] for s in a.seeds] for acc in ACCS}
    for acc in ACCS:
        sd = statistics.stdev(diff[acc]) if len(diff[acc]) > 1 else float("nan")
        print(f"pretrained - scratch at {acc}: {statistics.mean(diff[acc]):+.2f} dB (per seed "
              f"{', '.join(f'{d:+.2f}' for d in diff[acc])}; sd {sd:.2f})")
    (root / f"summary{name}.json").write_text(json.dumps({"slices": few, "of": slices, "zero_filled": zf,
                                                   "figures": {f"{k[0]} s{k[1]}": v for k, v in fig.items()},
                                                   "difference": diff}, indent=1))


if __name__ == "__main__":
    main()
