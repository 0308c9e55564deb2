"""The report: params, FLOPs, latency and accuracy of searched nets against the baselines, with plots."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from nas_recon import __version__  # noqa: E402
from nas_recon.cost import conv_macs, latency_ms  # noqa: E402
from nas_recon.data.dataset import SliceDataset  # noqa: E402
from nas_recon.data.identity import data_record, describe_data, folder_of, same_data  # noqa: E402
from nas_recon.defaults import SIZE
from nas_recon.engine.checkpoint import model_from_checkpoint  # noqa: E402
from nas_recon.errors import ConfigError  # noqa: E402
from nas_recon.evaluate.metrics import METRICS  # noqa: E402
from nas_recon.evaluate.scoring import (  # noqa: E402
    ensemble_predictor,
    evaluate,
    network_predictor,
    predictor_for,
    write_metrics,
)
from nas_recon.genotype import load_genotype  # noqa: E402
from nas_recon.io import atomic_write_text  # noqa: E402
from nas_recon.lock import LOCK_NAME, run_lock  # noqa: E402
from nas_recon.outputs import check_output_dir, claim_folder  # noqa: E402
from nas_recon.physics.fft import chan_to_complex  # noqa: E402
from nas_recon.physics.masks import MaskSpec  # noqa: E402
from nas_recon.report.equalcost import equal_cost, plot_front, run_info  # noqa: E402
from nas_recon.report.equalcost import markdown as equal_cost_markdown  # noqa: E402
from nas_recon.report.evidence import read_evidence  # noqa: E402
from nas_recon.search.selections import retrained  # noqa: E402

LOWER_BETTER = {"params", "flops", "latency_ms", "mse", "nmse"}


def read_run(path: Path) -> dict[str, Any]:
    """A search or retrain run folder, as a dict with its kind."""
    rj = path / "run.json"
    if not rj.is_file():
        raise ConfigError(f"{path}: not a run folder (no run.json)")
    try:
        meta = json.loads(rj.read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("model", {}), dict):
            raise ValueError("not a run record")
    except ValueError as e:
        raise ConfigError(f"{rj}: unreadable run record ({e})") from None
    return {"path": path, "kind": meta.get("kind"), "meta": meta}


def model_kind(meta: dict[str, Any]) -> str:
    """searched, random or baseline."""
    if meta["model"]["name"] != "searched":
        return "baseline"
    return "random" if "sampled" in meta.get("genotype_extra", {}) else "searched"


def run_steps(run: dict[str, Any]) -> int | None:
    """Optimiser steps a retrain run took (its train_log.csv's last row)."""
    log = run["path"] / "train_log.csv"
    try:
        rows = list(csv.DictReader(log.open()))
        return int(rows[-1]["step"])
    except (OSError, IndexError, KeyError, TypeError, ValueError):
        return None


def budget_notes(retrains: list[dict[str, Any]], evidence: dict[str, Any],
                 sections: list[dict[str, Any]]) -> list[str]:
    """One line per searched network whose result the evidence file says a larger budget changes: a searched cell
    trained below the budget at which search was measured to pay, a selected network that did not win here."""
    out = []
    cells = evidence.get("cell_search", {})
    for run in retrains:
        net = network_of(run["meta"])
        if net is None or model_kind(run["meta"]) != "searched":
            continue
        steps = run_steps(run)
        if retrained((run["meta"].get("genotype_extra") or {}).get("select")):
            out += selection_note(run, steps, evidence, sections)
            continue
        if net not in cells:
            out.append(f"{run['label']} ({net}): no budget has been measured for this space; what search buys "
                       "here is unknown until `bench/scaling.py` has run on it.")
            continue
        pays, measured = cells[net]["pays_at_steps"], cells[net]["measured_up_to_steps"]
        if pays is None:
            out.append(f"{run['label']} ({net}, {steps} steps): on the demo data no budget measured (up to "
                       f"{measured} steps per model) made such a searched cell beat both DC-CNN-3 and random "
                       "cells of its FLOPs, so this table does not show search paying off.")
        elif steps is not None and steps < pays:
            out.append(f"{run['label']} ({net}, {steps} steps): below the {pays} steps from which such a "
                       "searched cell beat DC-CNN-3 and random cells on the demo data.")
    return out


def selection_note(run: dict[str, Any], steps: int | None, evidence: dict[str, Any],
                   sections: list[dict[str, Any]]) -> list[str]:
    """A selected network that did not beat every handcrafted network at its FLOPs here: say so, and what the
    evidence file measured at a larger budget (nothing when it won)."""
    margins = [m for sec in sections for m in sec["margins"] if m["model"] == run["label"]]
    lost = [m for m in margins if m.get("psnr_vs_best_handcrafted", 1.0) <= 0 or m.get("ssim_vs_every_handcrafted",
                                                                                         1.0) < 0]
    if not lost:
        return []
    origin = run_info(run["meta"])["origin"]
    accs = ", ".join(m["acceleration"] for m in lost)
    text = (f"{run['label']} ({steps} steps per retraining): the selection did not beat every handcrafted network "
            f"at its FLOPs in PSNR and SSIM at {accs}"
            + (" (it selected a handcrafted point of the space, so it ties that network)" if origin == "handcrafted"
               else "") + ".")
    space = (run["meta"]["model"].get("genotype") or {}).get("space")
    ev = evidence.get("selection", {}).get(space)
    if ev is None:
        return [text + f" What the selection buys in space {space} has not been measured."]
    if ev["pays_at_steps"] is not None and (steps is None or steps < ev["pays_at_steps"]):
        text += (f" This budget is below the one it needs: on the demo data, {ev['measured']}. "
                 f"`nas-recon demo --budget {ev['budget']}` runs that budget.")
    else:
        text += f" On the demo data, {ev['measured']}."
    return [text]


def selection_rungs(run_dir: Path) -> list[dict[str, Any]] | None:
    """The rungs of a search's selection (selection/selection.json), None for a search without one."""
    from nas_recon.select.halving import SELECTION, summary

    if not (run_dir / SELECTION / "selection.json").is_file():
        return None
    return summary(run_dir / SELECTION).get("rungs")


def rungs_sentence(rungs: list[dict[str, Any]]) -> str:
    """Whether each rung's scores predicted the next (Kendall's tau of the promoted candidates)."""
    parts = [f"{r['epochs']} -> {rungs[i + 1]['epochs']} epochs: tau {r['tau_with_next']:+.2f} "
             f"({rungs[i + 1]['candidates']} candidates)" for i, r in enumerate(rungs[:-1])
             if isinstance(r.get("tau_with_next"), int | float)]
    head = (f"Selected by retrained quality over {len(rungs)} rung(s) of "
            + ", ".join(str(r["epochs"]) for r in rungs) + " epochs (validation scores only).")
    return head + (" Did a rung predict the next? " + "; ".join(parts) + "." if parts else
                   " One rung: no rank correlation between rungs to show.")


def network_of(meta: dict[str, Any]) -> str | None:
    """'SPACE, bias-free' or 'SPACE, biased' for a cell network (searched or random); None for a baseline."""
    g = meta["model"].get("genotype")
    if meta["model"]["name"] != "searched" or not isinstance(g, dict):
        return None
    return f"{g.get('space', '?')}, {'biased' if g.get('bias') else 'bias-free'}"


def label_of(run: dict[str, Any]) -> str:
    """Row label: the model name for baselines, the run folder for searched/random cells."""
    meta = run["meta"]
    kind = model_kind(meta)
    if kind == "baseline":
        width = meta["model"].get("channels", 32)
        return meta["model"]["name"] + ("" if width == 32 else f" (width {width})")
    name = run["path"].name
    return name if name.startswith(kind) else f"{kind}:{name}"


def label_runs(runs: list[dict[str, Any]]) -> None:
    """Give every retrain run a distinct row label (`run["label"]`).

    Runs that would share a label (the same baseline trained twice, equally named folders under different parents)
    get the shortest tail of their folder path that no other such run shares, e.g. `dccnn-3 (a/dccnn-3)`.
    """
    base = [label_of(r) for r in runs]
    paths = [r["path"].resolve() for r in runs]
    for i, p in enumerate(paths):
        if p in paths[:i]:
            raise ConfigError(f"--runs: {runs[i]['path']} is given twice")
    for run, path, lab in zip(runs, paths, base, strict=True):
        others = [q for q, other in zip(paths, base, strict=True) if other == lab and q != path]
        if not others:
            run["label"] = lab
            continue
        depth = 1
        while any(q.parts[-depth:] == path.parts[-depth:] for q in others):
            depth += 1
        run["label"] = f"{lab} ({'/'.join(path.parts[-depth:])})"


def is_legacy_report(out: Path) -> bool:
    """A report folder written before folders were marked: its report.json says so."""
    try:
        return json.loads((out / "report.json").read_text()).get("format") == "nas-recon-report"
    except (OSError, ValueError, AttributeError):
        return False


def check_same_training_data(retrains: list[dict[str, Any]], mixed: bool) -> None:
    """Refuse (or, with `mixed`, mark) retrain runs whose training data differ by content from the first run's."""
    first = retrains[0]["meta"].get("data")
    for run in retrains:
        same = same_data(run["meta"].get("data"), first)
        run["same_data"] = same
        if not same and not mixed:
            raise ConfigError(f"--runs: {run['path']} trained on {describe_data(run['meta'].get('data'))}, "
                              f"{retrains[0]['path']} on {describe_data(first)}: different data cannot be ranked "
                              "side by side (--mixed-data shows them marked)")


def check_same_kind(retrains: list[dict[str, Any]], data: Path | None) -> None:
    """Refuse, from the run records and before any evaluation, runs trained on different kinds of data (or coil
    counts), and a test folder of another kind than theirs (--mixed-data does not cover this: they cannot be
    scored on one test set)."""
    from nas_recon.data.dataset import list_volumes
    from nas_recon.data.hdf5 import inspect_volume
    from nas_recon.evaluate.scoring import check_kind, kind_of

    first = int(retrains[0]["meta"].get("coils") or 0)
    for run in retrains[1:]:
        other = int(run["meta"].get("coils") or 0)
        if other != first:
            raise ConfigError(f"--runs: {run['path']} trained on {kind_of(other)} data, {retrains[0]['path']} on "
                              f"{kind_of(first)}: networks of different kinds cannot be scored on one test set")
    record = retrains[0]["meta"].get("data")
    if data is None and record is None:
        raise ConfigError(f"--runs: {retrains[0]['path']}/run.json has no 'data' record to find its test folder; "
                          "give --data TEST_FOLDER")
    test = Path(data) if data is not None else Path(folder_of(record)) / "test"
    if test.is_dir():
        files = list_volumes(test)
        check_kind(first, inspect_volume(files[0]).coils, retrains[0]["path"], test)


def file_sha256(path: Path) -> str:
    """Content hash of a file (the checkpoint a cached metric came from)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_metrics(cache: Path, key: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Metrics from `cache` when it was made under exactly `key`, else computed and cached with the key."""
    try:
        cached = json.loads(cache.read_text())
        if isinstance(cached, dict) and cached.get("cache_key") == key:
            return cached
    except (OSError, ValueError):
        pass  # absent or damaged: recompute
    res = compute()
    res["cache_key"] = key
    write_metrics(res, cache)
    return res


def metrics_key(data: Path, size: int, crop: int | None, max_slices: int | None, seed: int,
                files: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything besides the model that determines a test metric (the test files by fingerprint: an edit in
    place changes its modification time, and the cached metric is recomputed). `files`: the test files'
    fingerprints when the caller has them (one report fingerprints its test folder once, not once per model)."""
    files = data_record(data)["files"] if files is None else files
    return {"data": str(Path(data).resolve()), "size": size, "crop": crop, "max_slices": max_slices, "seed": seed,
            "masks": repr(MaskSpec()), "version": __version__, "files": files}


def evaluate_run(run: dict[str, Any], data: Path, size: int, crop: int | None, max_slices: int | None,
                 device: str, seed: int, files: dict[str, Any] | None = None, maps_dir: Path | None = None
                 ) -> dict[str, Any]:
    """metrics-test.json of a retrain run (cached in the run folder, keyed on best.pt's content)."""
    ckpt = run["path"] / "best.pt"
    if not ckpt.is_file():
        raise ConfigError(f"{run['path']}: no best.pt (the run has not finished an epoch)")
    key = {**metrics_key(data, size, crop, max_slices, seed, files), "checkpoint_sha256": file_sha256(ckpt)}

    def compute() -> dict[str, Any]:
        predict, info = predictor_for(str(ckpt), None, device)
        res = evaluate(predict, data, size, MaskSpec(), seed, crop, max_slices, trained_on=(info["coils"], str(ckpt)),
                       maps_dir=maps_dir, coil_estimator=info.get("coil_estimator", "auto"))
        res["method"] = info
        return res

    return cached_metrics(run["path"] / "metrics-test.json", key, compute)


def classical_metrics(name: str, data: Path, size: int, crop: int | None, max_slices: int | None, seed: int,
                      cache_dir: Path, files: dict[str, Any] | None = None, maps_dir: Path | None = None
                      ) -> dict[str, Any]:
    """Metrics of zero-filled or TV (cached in the report folder)."""
    key = {**metrics_key(data, size, crop, max_slices, seed, files), "method": name}

    def compute() -> dict[str, Any]:
        predict, info = predictor_for(None, name, "cpu")
        res = evaluate(predict, data, size, MaskSpec(), seed, crop, max_slices, maps_dir=maps_dir)
        res["method"] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in info.items()}
        return res

    return cached_metrics(cache_dir / f"metrics-{name}.json", key, compute)


def fmt(metric: str, m: dict[str, float]) -> str:
    """mean +- std in a metric's usual precision."""
    if metric in ("mse",):
        return f"{m['mean']:.3e} ± {m['std']:.1e}"
    if metric == "psnr":
        return f"{m['mean']:.2f} ± {m['std']:.2f}"
    return f"{m['mean']:.4f} ± {m['std']:.4f}"


def build_rows(metrics: dict[str, dict], costs: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per model per acceleration."""
    rows = []
    for label, res in metrics.items():
        for acc, agg in res["aggregate"].items():
            rows.append({"model": label, "kind": costs[label]["kind"], "network": costs[label].get("network"),
                         "acceleration": acc,
                         **{k: costs[label].get(k) for k in ("params", "flops", "latency_ms")},
                         **{k: costs[label][k] for k in ("family", "width", "band", "origin", "selection_cost")
                            if k in costs[label]},
                         **{m: agg[m] for m in METRICS}})
    return rows


def best_marks(rows: list[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    """(model, column) -> best in its acceleration (learnt models only for cost columns)."""
    marks = {}
    for acc in {r["acceleration"] for r in rows}:
        group = [r for r in rows if r["acceleration"] == acc]
        for col in ("params", "flops", "latency_ms", *METRICS):
            cand = [r for r in group if r[col] is not None and (col not in ("params", "flops", "latency_ms")
                                                                 or r["kind"] not in ("classical",))]
            if not cand:
                continue

            def val(r: dict[str, Any], c: str = col) -> float:
                return r[c]["mean"] if isinstance(r[c], dict) else r[c]

            if col in LOWER_BETTER:
                cand = [r for r in cand if val(r) > 0] or cand
                best = min(val(r) for r in cand)
            else:
                best = max(val(r) for r in cand)
            for r in cand:
                if val(r) == best:
                    marks[(r["model"], acc, col)] = True
    return marks


def markdown_tables(rows: list[dict[str, Any]]) -> list[str]:
    """One Markdown table per acceleration, best per column in bold."""
    marks = best_marks(rows)
    out = []
    for acc in sorted({r["acceleration"] for r in rows}, key=lambda a: float(a[:-1])):
        out += [f"### {acc}", "",
                "| model | kind | params | FLOPs (G) | latency (ms) | MSE | NMSE | PSNR (dB) | SSIM |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        group = sorted((r for r in rows if r["acceleration"] == acc), key=lambda r: -r["psnr"]["mean"])
        for r in group:
            def cell(col: str, text: str, r: dict[str, Any] = r, acc: str = acc) -> str:
                return f"**{text}**" if marks.get((r["model"], acc, col)) else text
            params = "–" if r["params"] is None else cell("params", f"{r['params']:,}")
            flops = "–" if r["flops"] is None else cell("flops", f"{r['flops'] / 1e9:.2f}")
            lat = "–" if r["latency_ms"] is None else cell("latency_ms", f"{r['latency_ms']:.0f}")
            kind = r["kind"] + (f" ({r['network']})" if r.get("network") else "")
            out.append(f"| {r['model']} | {kind} | {params} | {flops} | {lat} | "
                       + " | ".join(cell(m, fmt(m, r[m])) for m in METRICS) + " |")
        out.append("")
    return out


def label_offsets(points: list[tuple[float, float]], step: float = 9.0) -> list[tuple[float, float]]:
    """Text offsets (points) for labels of (FLOPs, PSNR) markers: markers of the same cost (within 2 %) get
    their labels stacked downwards in order of PSNR, so that models sharing a cost (dccnn-3, modl-3) do not
    print one label over the other."""
    order = sorted(range(len(points)), key=lambda i: -points[i][1])
    placed: list[tuple[float, int]] = []  # (flops, rank in its cost group)
    out: dict[int, tuple[float, float]] = {}
    for i in order:
        x = points[i][0]
        rank = sum(1 for fx, _ in placed if abs(fx - x) <= 0.02 * max(abs(x), 1e-12))
        placed.append((x, rank))
        out[i] = (5.0, 4.0 - step * rank)
    return [out[i] for i in range(len(points))]


def plot_pareto(rows: list[dict[str, Any]], path: Path) -> None:
    """PSNR vs FLOPs, one panel per acceleration, searched nets highlighted, random cells as a cloud."""
    accs = sorted({r["acceleration"] for r in rows}, key=lambda a: float(a[:-1]))
    fig, axes = plt.subplots(1, len(accs), figsize=(5.5 * len(accs), 4.2), squeeze=False)
    style = {"searched": ("*", "#d62728", 180), "random": ("o", "#ff9896", 45), "baseline": ("s", "#1f77b4", 50)}
    flops = [r["flops"] for r in rows if r["flops"]]
    for ax, acc in zip(axes[0], accs, strict=True):
        seen: set[str] = set()
        named = []
        for r in rows:
            if r["acceleration"] != acc or not r["flops"]:
                continue
            marker, colour, size = style.get(r["kind"], ("^", "#7f7f7f", 50))
            label = r["kind"] if r["kind"] not in seen else None
            seen.add(r["kind"])
            ax.scatter(r["flops"] / 1e9, r["psnr"]["mean"], marker=marker, c=colour, s=size, zorder=3, label=label)
            if r["kind"] != "random":
                named.append((r["model"], r["flops"] / 1e9, r["psnr"]["mean"]))
        for (name, x, y), off in zip(named, label_offsets([(x, y) for _, x, y in named]), strict=True):
            ax.annotate(name, (x, y), fontsize=7, xytext=off, textcoords="offset points")
        for r in rows:
            if r["acceleration"] == acc and not r["flops"]:
                ax.axhline(r["psnr"]["mean"], ls="--", lw=0.8, c="#7f7f7f")
                ax.annotate(r["model"], (0.01, r["psnr"]["mean"]), xycoords=("axes fraction", "data"), fontsize=7,
                            xytext=(0, 3), textcoords="offset points", color="#555555")
        if flops and max(flops) / min(flops) > 10:
            ax.set_xscale("log")
        ax.set_xlabel(f"FLOPs (G multiply-accumulates, {SIZE} x {SIZE})")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"{acc}: PSNR vs FLOPs (dashed: no-FLOPs methods)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_images(models: dict[str, Any], data: Path, size: int, crop: int | None, seed: int, path: Path,
                maps_dir: Path | None = None) -> None:
    """One test slice per acceleration: target, each method, and its error map."""
    ds = SliceDataset(data, size, crop, MaskSpec(), "eval", seed, maps_dir=maps_dir)
    picks = {}
    mid = len(ds.slices) // 2
    for i, (v, s, a) in enumerate(ds.items):
        if (v, s) == ds.slices[mid]:
            picks[a] = i
    names = list(models)
    fig, axes = plt.subplots(2 * len(picks), len(names) + 1, figsize=(1.9 * (len(names) + 1), 3.8 * len(picks)),
                             squeeze=False)
    for row, (acc, idx) in enumerate(sorted(picks.items())):
        s = ds[idx]
        batch = s.batched()
        gt = chan_to_complex(s.target).abs().numpy()
        vmax = gt.max()
        axes[2 * row, 0].imshow(gt, cmap="gray", vmin=0, vmax=vmax)
        axes[2 * row, 0].set_title(f"target ({acc:g}x)", fontsize=8)
        axes[2 * row + 1, 0].axis("off")
        for col, name in enumerate(names, start=1):
            pred = chan_to_complex(models[name](batch)[0]).abs().numpy()
            axes[2 * row, col].imshow(pred, cmap="gray", vmin=0, vmax=vmax)
            axes[2 * row, col].set_title(name, fontsize=7)
            axes[2 * row + 1, col].imshow(np.abs(pred - gt), cmap="inferno", vmin=0, vmax=0.25 * vmax)
            axes[2 * row + 1, col].set_title("|error|", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    ds.close()


def plot_alphas(alphas_csv: Path, path: Path, title: str) -> None:
    """Softmax weight of every op on every edge over search epochs (small multiples)."""
    rows = list(csv.DictReader(alphas_csv.open()))
    if not rows:
        return
    edges = sorted({(int(r["node"]), int(r["input"])) for r in rows})
    ops = list(dict.fromkeys(r["op"] for r in rows))
    cols = max(i for i, _ in edges) + 2
    nodes = max(i for i, _ in edges) + 1
    fig, axes = plt.subplots(nodes, cols, figsize=(2.3 * cols, 1.9 * nodes), squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.axis("off")
    names = {0: "c_{k-2}", 1: "c_{k-1}"}
    for i, j in edges:
        ax = axes[i, j]
        ax.axis("on")
        for op in ops:
            pts = [(int(r["epoch"]), float(r["weight"])) for r in rows
                   if int(r["node"]) == i and int(r["input"]) == j and r["op"] == op]
            ax.plot(*zip(*pts, strict=True), label=op, lw=1.2)
        src = f"${names[j]}$" if j < 2 else f"node {j - 2}"
        ax.set_title(f"{src} → node {i}", fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6, loc="upper left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def decision_points(rows: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(epoch, value) of a search_log column for a log axis: epoch 1's drift (a 1.0 placeholder, there is no
    earlier epoch to compare with) and values <= 0 (a tie, off a log axis) are left out."""
    pts = []
    for r in rows:
        try:
            v = float(r[key])
        except (KeyError, TypeError, ValueError):
            continue
        if (key == "drift" and int(r["epoch"]) == 1) or not v > 0:
            continue
        pts.append((int(r["epoch"]), v))
    return pts


def plot_decision(log: Path, path: Path, title: str) -> bool:
    """Search decision per epoch: the margin the cell depends on, min op/edge margins, mean entropy."""
    rows = list(csv.DictReader(log.open())) if log.is_file() else []
    if not rows or "chosen_margin" not in rows[0]:
        return False
    ep = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for key, lab in (("chosen_margin", "margin the cell depends on"), ("min_op_margin", "min op margin"),
                     ("min_edge_margin", "min edge margin"), ("drift", "max weight change this epoch")):
        pts = decision_points(rows, key)
        axes[0].plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=lab, lw=1.2)
    axes[0].set_yscale("log")  # margins of 1e-4 and drifts of 1e-2 on one axis
    axes[0].set_ylabel("softmax-weight margin (log)")
    axes[0].legend(fontsize=7)
    axes[1].plot(ep, [float(r["mean_entropy"]) for r in rows], marker=".", lw=1.2)
    axes[1].set_ylabel("mean edge entropy (1 = uniform)")
    for ax in axes:
        ax.set_xlabel("search epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_training(runs: list[dict[str, Any]], path: Path) -> None:
    """Learning curves of every retrain run: training loss per epoch, validation PSNR vs step and vs wall time."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for run in runs:
        log = run["path"] / "train_log.csv"
        if not log.is_file():
            continue
        rows = list(csv.DictReader(log.open()))
        trained = [r for r in rows if r["train_loss"] not in ("", None)]
        axes[0].plot([int(r["epoch"]) for r in trained], [float(r["train_loss"]) for r in trained],
                     label=run["label"], lw=1.2)
        rows = [r for r in rows if r.get("val_psnr") not in ("", None)]  # epochs validated (a trial: its rungs)
        if rows and "step" in rows[0]:
            psnr = [float(r["val_psnr"]) for r in rows]
            axes[1].plot([int(r["step"]) for r in rows], psnr, marker=".", label=run["label"], lw=1.2)
            axes[2].plot([float(r["wall_seconds"]) for r in rows], psnr, marker=".", label=run["label"], lw=1.2)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss")
    axes[1].set_xlabel("optimiser step")
    axes[2].set_xlabel("wall time (s, training + validation)")
    for ax in axes[1:]:
        ax.set_ylabel("validation PSNR (dB)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def search_decision(log: Path) -> dict[str, Any]:
    """The last epoch's margin and whether the derived cell was decided."""
    rows = list(csv.DictReader(log.open())) if log.is_file() else []
    if not rows or "chosen_margin" not in rows[-1]:
        return {}
    return {"final_margin": float(rows[-1]["chosen_margin"]), "decided": rows[-1]["decided"] == "1"}


def make_report(run_dirs: list[Path], out: Path, data: Path | None = None, size: int = SIZE, crop: int | None = None,
                max_slices: int | None = None, device: str = "cpu", seed: int = 0,
                classical: tuple[str, ...] = ("zero-filled", "tv"), latency_repeats: int = 3,
                notes: list[str] | None = None, progress=None, mixed_data: bool = False,
                maps_dir: Path | None = None, ensembles: list[list[Path]] | None = None) -> dict[str, Any]:
    """Gather runs into OUT/report.md, report.json and PNG plots; return the report object.

    Runs trained on different data (by content) are refused unless `mixed_data`, which marks them instead.
    Multi-coil: `maps_dir` caches the test slices' ESPIRiT maps (computed once for every method).
    `ensembles`: groups of the retrain runs, each reported as one more row (the mean of their outputs, their costs
    summed).
    """
    runs = [read_run(Path(p)) for p in run_dirs]  # a refused run list writes nothing, not even OUT
    retrains = [r for r in runs if r["kind"] == "retrain"]
    if not retrains:
        raise ConfigError("--runs: no retrain run among them (a report compares retrained models)")
    label_runs(retrains)
    check_same_kind(retrains, data)
    from nas_recon.search.fidelity import read_fidelity

    for run in runs:  # evidence files are inputs too: validated before any work
        if run["kind"] == "search":
            read_fidelity(run["path"])
    check_same_training_data(retrains, mixed_data)
    groups = ensemble_groups(retrains, ensembles or [], device)
    evidence = read_evidence()
    check_output_dir(out)  # a file, not a folder: refused before the lock creates anything
    with run_lock(out, "report"):
        return _make_report(runs, out, data, size, crop, max_slices, device, seed, classical, latency_repeats,
                            notes, progress, maps_dir, evidence, groups)


def ensemble_groups(retrains: list[dict[str, Any]], ensembles: list[list[Path]], device: str
                    ) -> list[tuple[list[dict[str, Any]], Any]]:
    """(member runs, predictor) of each --ensemble group; refused, before any work, unless its members are
    at least two of the reported retrain runs, trained at one size and coil count on one data folder."""
    by_path = {r["path"].resolve(): r for r in retrains}
    groups = []
    for group in ensembles:
        if len(group) < 2:
            raise ConfigError(f"--ensemble {' '.join(map(str, group))}: an ensemble needs at least two runs")
        members = []
        for p in group:
            if Path(p).resolve() not in by_path:
                raise ConfigError(f"--ensemble: {p} is not one of the retrain runs given to --runs")
            members.append(by_path[Path(p).resolve()])
        predict, _ = ensemble_predictor([str(m["path"] / "best.pt") for m in members], device)
        groups.append((members, predict))
    return groups


def _make_report(runs: list[dict[str, Any]], out: Path, data: Path | None, size: int, crop: int | None,
                 max_slices: int | None, device: str, seed: int, classical: tuple[str, ...], latency_repeats: int,
                 notes: list[str] | None, progress, maps_dir: Path | None = None,
                 evidence: dict[str, Any] | None = None, groups: list | None = None) -> dict[str, Any]:
    """make_report inside the report folder's lock, on the read and labelled RUNS."""
    searches = [r for r in runs if r["kind"] == "search"]
    retrains = [r for r in runs if r["kind"] == "retrain"]
    if data is None:
        data = Path(folder_of(retrains[0]["meta"]["data"])) / "test"
    claim_folder(out, "report", ignore=[LOCK_NAME], known=is_legacy_report(out))
    say = progress or (lambda text: None)
    metrics: dict[str, dict] = {}
    costs: dict[str, dict] = {}
    predictors: dict[str, Any] = {}
    dev = torch.device(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    files = data_record(data)["files"]  # the test files fingerprinted once for every cache key
    coils = int(retrains[0]["meta"].get("coils") or 0)  # cost inputs: the runs' kind of data
    for name in classical:
        say(f"evaluating {name}")
        metrics[name] = classical_metrics(name, data, size, crop, max_slices, seed, out, files, maps_dir)
        costs[name] = {"kind": "classical", "params": 0 if name == "zero-filled" else None,
                       "flops": 0 if name == "zero-filled" else None, "latency_ms": None}
        predictors[name] = predictor_for(None, name, "cpu")[0]
    for run in retrains:
        label = run["label"]
        say(f"evaluating {label}")
        metrics[label] = evaluate_run(run, data, size, crop, max_slices, device, seed, files, maps_dir)
        model, spec, _ = model_from_checkpoint(run["path"] / "best.pt")
        costs[label] = {"kind": model_kind(run["meta"]) + ("" if run.get("same_data", True) else ", other data"),
                        "network": network_of(run["meta"]),
                        "params": run["meta"]["params"],
                        "flops": conv_macs(model, SIZE, coils),
                        "latency_ms": latency_ms(model, SIZE, dev, repeats=latency_repeats, coils=coils),
                        **run_info(run["meta"])}
        predictors[label] = network_predictor(model, dev)
    for members, predict in groups or []:
        label = "ensemble: " + " + ".join(m["label"] for m in members)
        say(f"evaluating {label}")
        key = {**metrics_key(data, size, crop, max_slices, seed, files),
               "checkpoints_sha256": [file_sha256(m["path"] / "best.pt") for m in members]}
        name = "-".join(m["path"].name for m in members)
        metrics[label] = cached_metrics(out / f"metrics-ensemble-{name}.json", key, lambda p=predict: evaluate(
            p, data, size, MaskSpec(), seed, crop, max_slices, maps_dir=maps_dir))
        parts = [costs[m["label"]] for m in members]
        costs[label] = {"kind": "ensemble", "network": f"mean of {len(members)} networks' outputs",
                        **{k: sum(c[k] for c in parts) if all(c[k] is not None for c in parts) else None
                           for k in ("params", "flops", "latency_ms")}}
        predictors[label] = predict
    rows = build_rows(metrics, costs)
    say("drawing plots")
    plot_pareto(rows, out / "psnr_vs_flops.png")
    sections = equal_cost(rows)
    if sections:
        plot_front(rows, out / "front.png")
    plot_images(predictors, data, size, crop, seed, out / "images.png", maps_dir)
    plot_training(retrains, out / "training_curves.png")
    from nas_recon.search.fidelity import read_fidelity

    evidence = evidence or {}
    cells = []
    for run in searches:
        g = load_genotype(run["path"] / "genotype.json")
        name = run["path"].name
        for ext in ("png", "svg"):
            if (run["path"] / f"cell.{ext}").is_file():
                shutil.copyfile(run["path"] / f"cell.{ext}", out / f"cell-{name}.{ext}")
        if (run["path"] / "alphas.csv").is_file():
            plot_alphas(run["path"] / "alphas.csv", out / f"alphas-{name}.png", f"alpha evolution, search {name}")
        plot_decision(run["path"] / "search_log.csv", out / f"decision-{name}.png", f"search decision, {name}")
        fid = read_fidelity(run["path"])  # bench/ranking.py's measurement on this search, if any
        cells.append({"run": name, "genotype": g.to_dict(), "cell": g.describe(), "space": g.space,
                      "bias": g.bias, "fidelity": fid and {k: fid.get(k) for k in ("tau", "ci95", "cells", "budget",
                                                                                   "verdict")},
                      "epochs_run": g.extra.get("epochs_run"), "stopped_early": g.extra.get("stopped_early"),
                      "selection_rungs": selection_rungs(run["path"]),
                      "fidelity_measured": evidence.get("supernet_fidelity"),
                      **search_decision(run["path"] / "search_log.csv")})
    settings = {
        "data": str(data), "size": size, "crop": crop, "max_slices": max_slices, "mask_seed": seed,
        "accelerations": "4x and 8x, random masks (fastMRI semantics), fixed per (file, slice)",
        "flops": f"conv multiply-accumulates (thop) for one 2 x {SIZE} x {SIZE} input"
                 + (f" ({coils} coils)" if coils else "") + ", all cascades",
        "latency": f"median of {latency_repeats} timed runs, batch 1, {SIZE} x {SIZE}"
                   + (f" x {coils} coils" if coils else "") + f", {dev}",
        "coils": coils,
        "recipes": {r["label"]: r["meta"]["recipe"] for r in retrains},
        "training_data": {r["label"]: describe_data(r["meta"].get("data")) for r in retrains},
        "tv_backend": metrics.get("tv", {}).get("method", {}).get("tv_backend"),
    }
    report = {"format": "nas-recon-report", "version": 1, "package_version": __version__, "settings": settings,
              "rows": rows, "searched_cells": cells, "notes": notes or [],
              "budget_notes": budget_notes(retrains, evidence, sections), "equal_cost": sections}
    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out / "report.md", report_markdown(report, out))
    return report


def report_markdown(report: dict[str, Any], out: Path) -> str:
    """The human-readable report."""
    s = report["settings"]
    lines = ["# nas-recon report", "",
             "Searched reconstruction cells against handcrafted baselines and random cells, all retrained from "
             "scratch under the same recipe, evaluated on the same test slices and masks.", ""]
    if report["notes"]:
        lines += ["## Run", ""] + [f"- {n}" for n in report["notes"]] + [""]
    lines += ["## Results (mean ± std over slices; best per column in bold)", ""]
    if report.get("budget_notes"):
        lines += ["**Budget.** " + " ".join(report["budget_notes"]), ""]
    lines += markdown_tables(report["rows"])
    lines += ["![PSNR vs FLOPs](psnr_vs_flops.png)", ""]
    if report.get("equal_cost"):
        lines += ["## At equal cost", "",
                  "Each selected network against every handcrafted network at or below its FLOPs target (DC-CNN and "
                  "MoDL in their published structure at the width that meets the target, and the fixed baselines "
                  "below it) and against random networks of its band, all retrained under the same recipe.", ""]
        lines += equal_cost_markdown(report["equal_cost"])
        lines += ["![front](front.png)", ""]
    if report["searched_cells"]:
        lines += ["## Searched cells", ""]
    for c in report["searched_cells"]:
        early = "stopped early (genotype stable and decided)" if c["stopped_early"] else "ran to the epoch limit"
        decided = ""
        if "final_margin" in c:
            decided = (f" Final margin {c['final_margin']:.4f}: "
                       f"{'decided' if c['decided'] else 'undecided (margins below the threshold or the drift)'}.")
        net = f"space {c.get('space', '?')}, {'biased' if c.get('bias') else 'bias-free'} cells"
        fid = c.get("fidelity")
        if fid:
            rank = f"Ranking fidelity ({fid['cells']} cells retrained at the {fid['budget']} budget): {fid['verdict']}."
        elif c.get("selection_rungs"):
            rank = rungs_sentence(c["selection_rungs"])
        else:
            rank = ("Ranking fidelity not measured for this search (`bench/ranking.py` measures it). "
                    + (c.get("fidelity_measured") or ""))
        lines += [f"### {c['run']}", "", f"`{c['cell']}` ({net}) — {c['epochs_run']} search epochs, {early}."
                  f"{decided}", "", rank, "",
                  f"![cell {c['run']}](cell-{c['run']}.png)", ""]
        for kind in ("alphas", "decision"):
            if (out / f"{kind}-{c['run']}.png").is_file():
                lines += [f"![{kind} {c['run']}]({kind}-{c['run']}.png)", ""]
    lines += ["## Images", "", "One test slice per acceleration: target, each method, and |error| (same scale).", "",
              "![images](images.png)", "", "## Learning curves",
              "", "Training loss per epoch; validation PSNR against optimiser steps and against wall time "
              "(step 0 = the untrained model).", "", "![training](training_curves.png)", "",
              "## Settings", ""]
    for k, v in s.items():
        if k not in ("recipes", "training_data"):
            lines.append(f"- **{k}**: {v}")
    trained_on = s.get("training_data", {})
    if len(set(trained_on.values())) == 1:
        lines.append(f"- **training data** (every retrained model): {next(iter(trained_on.values()))}")
    for label, what in (trained_on.items() if len(set(trained_on.values())) > 1 else []):
        lines.append(f"- **training data** of {label}: {what}")
    recipes = {json.dumps(v, sort_keys=True) for v in s["recipes"].values()}
    lines.append(f"- **recipe** (every retrained model): {'; '.join(sorted(recipes))}")
    lines += ["", f"nas-recon {report['package_version']}", ""]
    return "\n".join(lines)

