"""The report's comparison at equal cost: for each FLOPs target a selection worked in, the selected network against
every handcrafted network at or below the target and against random networks of the band, with the selection's
cost; and the Pareto plot of PSNR and SSIM against FLOPs with the searched front and each handcrafted family as a
line.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nas_recon.defaults import SIZE  # noqa: E402

ACCS = ("4x", "8x")


def run_info(meta: dict[str, Any]) -> dict[str, Any]:
    """What the equal-cost tables need of a retrain run: its family (baselines: the model name without width), the
    FLOPs band a selection or a sampler put it in, and a selection's origin and cost."""
    model = meta["model"]
    extra = meta.get("genotype_extra") or {}
    sel = extra.get("selection") if isinstance(extra.get("selection"), dict) else None
    sampled = extra.get("sampled") if isinstance(extra.get("sampled"), dict) else None
    band = (sel or {}).get("band") or (sampled or {}).get("flops_band")
    return {"family": model["name"] if model["name"] != "searched" else None,
            "width": model.get("channels"), "band": band if isinstance(band, dict) else None,
            "origin": (sel or {}).get("origin"), "selection_cost": (sel or {}).get("cost")}


def same_band(a: dict | None, b: dict | None) -> bool:
    """Two bands with the same target and width (to 0.1 %)."""
    if not a or not b:
        return False
    return abs(a["target"] - b["target"]) <= 1e-3 * a["target"] and abs(a["band"] - b["band"]) < 1e-9


def equal_cost(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One section per band a selected (searched) network was selected in."""
    bands: list[dict] = []
    for r in rows:
        if r["kind"] == "searched" and r.get("band") and not any(same_band(r["band"], b) for b in bands):
            bands.append(r["band"])
    out = []
    for band in bands:
        hi = band["target"] * (1 + band["band"])
        sec: dict[str, Any] = {"band": band, "selected": [], "handcrafted": [], "random": {}, "margins": []}
        for acc in ACCS:
            group = [r for r in rows if r["acceleration"] == acc]
            sel = [r for r in group if r["kind"] == "searched" and same_band(r.get("band"), band)]
            hand = [r for r in group if r["kind"].startswith("baseline") and r["flops"] and r["flops"] <= hi]
            rand = [r for r in group if r["kind"] == "random" and same_band(r.get("band"), band)]
            for r in sel:
                sec["selected"].append(pick(r, acc))
            for r in hand:
                sec["handcrafted"].append(pick(r, acc))
            if rand:
                sec["random"][acc] = {m: {"mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
                                          "n": len(v)} for m, v in (("psnr", [r["psnr"]["mean"] for r in rand]),
                                                                    ("ssim", [r["ssim"]["mean"] for r in rand]))}
            for r in sel:
                m: dict[str, Any] = {"model": r["model"], "acceleration": acc}
                if hand:
                    best = max(hand, key=lambda h: h["psnr"]["mean"])
                    m["psnr_vs_best_handcrafted"] = r["psnr"]["mean"] - best["psnr"]["mean"]
                    m["best_handcrafted"] = best["model"]
                    m["ssim_vs_every_handcrafted"] = min(r["ssim"]["mean"] - h["ssim"]["mean"] for h in hand)
                if rand and len(rand) > 1:
                    rs = sec["random"][acc]["psnr"]
                    m["psnr_vs_random_in_sd"] = ((r["psnr"]["mean"] - rs["mean"]) / rs["sd"]) if rs["sd"] else None
                sec["margins"].append(m)
        costs = [r.get("selection_cost") for r in rows if r["kind"] == "searched" and same_band(r.get("band"), band)
                 and r.get("selection_cost")]
        sec["selection_cost"] = costs[0] if costs else None
        out.append(sec)
    return out


def pick(r: dict[str, Any], acc: str) -> dict[str, Any]:
    """A row's figures for the equal-cost table."""
    return {"model": r["model"], "acceleration": acc, "flops": r["flops"], "psnr": r["psnr"]["mean"],
            "ssim": r["ssim"]["mean"], "origin": r.get("origin")}


def markdown(sections: list[dict[str, Any]]) -> list[str]:
    """The equal-cost tables and their margins."""
    lines: list[str] = []
    for sec in sections:
        band = sec["band"]
        lines += [f"### At {band['target'] / 1e9:.2f} GFLOPs ± {band['band']:.0%} ({band['source']})", ""]
        cost = sec.get("selection_cost")
        if cost:
            lines += [f"Selection cost: {cost['retrainings']} retraining-equivalents ({cost['epochs']} epochs), "
                      f"{cost['worker_hours']} worker-hours on {cost['device']}, {cost['trials']} trials.", ""]
        lines += ["| network | kind | GFLOPs | PSNR 4x | SSIM 4x | PSNR 8x | SSIM 8x |",
                  "|---|---|---:|---:|---:|---:|---:|"]

        def row(name: str, kind: str, entries: list[dict]) -> str:
            by = {e["acceleration"]: e for e in entries}
            fl = entries[0]["flops"]
            cells = [f"{by[a]['psnr']:.2f} | {by[a]['ssim']:.4f}" if a in by else "– | –" for a in ACCS]
            return f"| {name} | {kind} | {fl / 1e9:.2f} | " + " | ".join(cells) + " |"

        for kind, key in (("selected", "selected"), ("handcrafted", "handcrafted")):
            names = list(dict.fromkeys(e["model"] for e in sec[key]))
            for n in names:
                entries = [e for e in sec[key] if e["model"] == n]
                origin = entries[0].get("origin")
                lines.append(row(n, f"{kind}{f' ({origin})' if origin else ''}", entries))
        if sec["random"]:
            rnd = sec["random"]
            cells = [f"{rnd[a]['psnr']['mean']:.2f} ± {rnd[a]['psnr']['sd']:.2f} | {rnd[a]['ssim']['mean']:.4f} ± "
                     f"{rnd[a]['ssim']['sd']:.4f}" if a in rnd else "– | –" for a in ACCS]
            n = next(iter(rnd.values()))["psnr"]["n"]
            lines.append(f"| random networks of the band (n = {n}) | random | – | " + " | ".join(cells) + " |")
        lines.append("")
        for m in sec["margins"]:
            parts = []
            if "psnr_vs_best_handcrafted" in m:
                parts.append(f"{m['psnr_vs_best_handcrafted']:+.2f} dB against the best handcrafted network at or "
                             f"below the target ({m['best_handcrafted']}), SSIM {m['ssim_vs_every_handcrafted']:+.4f} "
                             "against every one")
            if m.get("psnr_vs_random_in_sd") is not None:
                parts.append(f"{m['psnr_vs_random_in_sd']:+.1f} sd from the random networks' mean")
            if parts:
                lines.append(f"- {m['model']} at {m['acceleration']}: " + "; ".join(parts) + ".")
        lines.append("")
    return lines


def plot_front(rows: list[dict[str, Any]], path: Path) -> None:
    """PSNR and SSIM against FLOPs per acceleration: the selected networks as the searched front (a line across
    targets), each handcrafted family as a line across widths, random networks as a cloud, the rest as points."""
    fig, axes = plt.subplots(2, len(ACCS), figsize=(5.6 * len(ACCS), 7.6), squeeze=False)
    for col, acc in enumerate(ACCS):
        group = [r for r in rows if r["acceleration"] == acc and r["flops"]]
        for row_i, metric in enumerate(("psnr", "ssim")):
            ax = axes[row_i, col]
            sel = sorted((r for r in group if r["kind"] == "searched"), key=lambda r: r["flops"])
            if sel:
                ax.plot([r["flops"] / 1e9 for r in sel], [r[metric]["mean"] for r in sel], "-*", c="#d62728", ms=12,
                        label="searched front", zorder=4)
            families: dict[str, list] = {}
            for r in group:
                if r["kind"].startswith("baseline") and r.get("family"):
                    families.setdefault(r["family"], []).append(r)
            for fam, rs in sorted(families.items()):
                rs.sort(key=lambda r: r["flops"])
                ax.plot([r["flops"] / 1e9 for r in rs], [r[metric]["mean"] for r in rs], "-s", ms=5, label=fam)
            rand = [r for r in group if r["kind"] == "random"]
            if rand:
                ax.scatter([r["flops"] / 1e9 for r in rand], [r[metric]["mean"] for r in rand], s=25, c="#ff9896",
                           label="random", zorder=2)
            ax.set_xlabel(f"FLOPs (G multiply-accumulates, {SIZE} x {SIZE})")
            ax.set_ylabel(metric.upper())
            ax.set_title(f"{acc}: {metric.upper()} vs FLOPs", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
