"""Benchmark (not a test): the multi-coil quick demo against the single-coil one, in one run, one after the other.

    python bench/multicoil_demo.py --out /tmp/mcbench [--coils 8] [--budget quick]

Runs `nas-recon demo` twice in subprocesses (single-coil, then `--coils N`), each in its own folder, and prints
each wall time, their ratio (the issue's target: multi-coil within 1.5x), the time of each stage (from the
demo's stage lines), the ESPIRiT maps cached, and both reports' tables.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path


def run_demo(out: Path, budget: str, coils: int) -> tuple[float, list[str]]:
    """Wall seconds of one demo and its stage lines."""
    cmd = [sys.executable, "-m", "nas_recon", "demo", "--budget", budget, "--out", str(out)]
    if coils:
        cmd += ["--coils", str(coils)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    stages = [line.strip() for line in proc.stdout.splitlines() if re.match(r"\s*\d+s ", line)]
    return seconds, stages


def rows(out: Path) -> list[str]:
    """The report's rows: model, params, GFLOPs, latency, PSNR/SSIM at 4x and 8x."""
    report = json.loads((out / "report" / "report.json").read_text())
    by_model: dict[str, dict] = {}
    for r in report["rows"]:
        by_model.setdefault(r["model"], {"row": r, "acc": {}})["acc"][r["acceleration"]] = r
    lines = []
    for name, v in by_model.items():
        r = v["row"]
        fl = "n/a" if r.get("flops") is None else f"{r['flops'] / 1e9:.2f}"
        lat = "n/a" if r.get("latency_ms") is None else f"{r['latency_ms']:.0f}"
        lines.append(f"  {name:<14} params {r.get('params') or 0:>10,}  GFLOPs {fl:>7}  latency {lat:>5} ms  "
                     + "  ".join(f"{a} {x['psnr']['mean']:.2f} / {x['ssim']['mean']:.4f}"
                                 for a, x in sorted(v["acc"].items())))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--budget", default="quick")
    args = ap.parse_args()
    results = {}
    for coils in (0, args.coils):
        out = args.out / (f"multi{coils}" if coils else "single")
        seconds, stages = run_demo(out, args.budget, coils)
        results[coils] = seconds
        print(f"demo --budget {args.budget}{f' --coils {coils}' if coils else ''}: {seconds:.0f} s", flush=True)
        for s in stages:
            print(f"  {s}")
        if coils:
            maps = list((out / "maps").glob("*.npy"))
            print(f"  ESPIRiT maps cached: {len(maps)} (file, slice, acceleration)")
        print("\n".join(rows(out)), flush=True)
    print(f"multi-coil / single-coil wall time: {results[args.coils] / results[0]:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
