"""The reference cost report kept in reports/: params and conv MACs of the paper baselines and examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas_recon import __version__
from nas_recon.cost import conv_macs
from nas_recon.defaults import SIZE
from nas_recon.genotype import load_genotype
from nas_recon.io import atomic_write_text
from nas_recon.models.registry import ModelSpec, build_model, count_params, spec_for_genotype
from nas_recon.paths import shipped_dir

PAPER_BASELINES = ("dccnn-3", "dccnn-11", "modl-3", "modl-11", "rdn-3", "rdn-8", "unet")


def reference_rows(size: int = SIZE) -> list[dict[str, Any]]:
    """One row per paper baseline and per example genotype in search_spaces/examples/."""
    rows = []
    for name in PAPER_BASELINES:
        m = build_model(ModelSpec(name))
        rows.append({"model": name, "kind": "baseline", "params": count_params(m), "flops": conv_macs(m, size)})
    for path in sorted(shipped_dir("search_spaces").joinpath("examples").glob("*.json")):
        g = load_genotype(path)
        m = build_model(spec_for_genotype(g))
        rows.append({"model": path.stem, "kind": "genotype", "nodes": g.nodes, "cell": g.describe(),
                     "params": count_params(m), "flops": conv_macs(m, size)})
    return rows


def reference_report(size: int = SIZE) -> tuple[dict[str, Any], str]:
    """(JSON object, Markdown text) of the reference cost report."""
    rows = reference_rows(size)
    data = {"format": "nas-recon-cost-report", "version": 1, "size": size, "rows": rows,
            "flops_definition": f"multiply-accumulates of all conv layers (thop) for one 2 x {size} x {size} input "
                                "through the whole network, all cascades",
            "params_definition": "learnable parameters, shared weights counted once"}
    lines = [f"# Cost at {size} x {size}", "",
             f"Regenerate with `nas-recon cost --reference --size {size} --write reports/cost-{size}` "
             f"(nas-recon {__version__}). FLOPs = {data['flops_definition']}; params = {data['params_definition']}.",
             "", "| model | kind | params | FLOPs (G MACs) | cell |", "|---|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['kind']} | {r['params']:,} | {r['flops'] / 1e9:.3f} | {r.get('cell', '')} |")
    return data, "\n".join(lines) + "\n"


def write_reference_report(stem: Path, size: int = SIZE) -> list[Path]:
    """Write STEM.json and STEM.md (atomically)."""
    data, md = reference_report(size)
    js, mdp = Path(f"{stem}.json"), Path(f"{stem}.md")
    atomic_write_text(js, json.dumps(data, indent=1) + "\n")
    atomic_write_text(mdp, md)
    return [js, mdp]
