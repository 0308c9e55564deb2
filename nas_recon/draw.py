"""DARTS-style drawing of a cell: c_{k-2}, c_{k-1}, nodes, labelled edges, c_{k}."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nas_recon.genotype import Genotype  # noqa: E402

OP_COLOURS = {
    "sep_conv_3x3": "#1f77b4", "dil_2_conv_3x3": "#2ca02c", "dil_3_conv_3x3": "#d62728",
    "conv_9x1_1x9": "#9467bd", "skip_connect": "#7f7f7f", "sep_conv_5x5": "#17becf", "dil_4_conv_3x3": "#8c564b",
    "conv_3x3": "#ff7f0e", "dil_2_dense_3x3": "#e377c2",
}


def draw_cell(genotype: Genotype, stem: Path, title: str | None = None) -> list[Path]:
    """Write `stem`.svg and `stem`.png; return their paths."""
    if genotype.chain:
        return draw_chain(genotype, stem, title)
    n = genotype.nodes
    pos = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for i in range(n):
        pos[i + 2] = (1.5 + 1.3 * i, 0.9 * ((-1) ** i) * (0.4 if n > 1 else 0))
    out_pos = (1.5 + 1.3 * n, 0.0)
    names = {0: "c_{k-2}", 1: "c_{k-1}", **{i + 2: str(i) for i in range(n)}}
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * n, 3.2))
    for i, node in enumerate(genotype.cell):
        for k, (j, op) in enumerate(zip(node.inputs, node.ops, strict=True)):
            (x0, y0), (x1, y1) = pos[j], pos[i + 2]
            bend = 0.25 if node.inputs[0] == node.inputs[1] and k else 0.12 * (1 if k else -1)
            colour = OP_COLOURS.get(op, "#000000")
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.4, shrinkA=14, shrinkB=14,
                                        connectionstyle=f"arc3,rad={bend}"))
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + (0.18 if k else -0.18), op, fontsize=7, color=colour,
                    ha="center", va="center", bbox=dict(fc="white", ec="none", alpha=0.8, pad=0.5))
    for i in range(n):
        (x0, y0) = pos[i + 2]
        ax.annotate("", xy=out_pos, xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="#bbbbbb", lw=1, ls="--", shrinkA=14, shrinkB=14))
    for key, (x, y) in pos.items():
        fc = "#c6e2ff" if key < 2 else "#ffe5b4"
        ax.text(x, y, f"${names[key]}$" if key < 2 else names[key], ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.4", fc=fc, ec="#555555"))
    ax.text(*out_pos, "$c_{k}$", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round,pad=0.4", fc="#d9f2d9", ec="#555555"))
    ax.set_xlim(-0.6, out_pos[0] + 0.6)
    ax.set_ylim(-1.6, 1.6)
    ax.axis("off")
    ax.set_title(title or f"{genotype.space} cell ({n} nodes, concat output)", fontsize=9)
    return save(fig, stem)


def draw_chain(genotype: Genotype, stem: Path, title: str | None = None) -> list[Path]:
    """A chain cell: y -> op_1 -> ReLU -> ... -> op_n, added to y; the macro choices in the title."""
    ops = [n.ops[0] for n in genotype.cell]
    fig, ax = plt.subplots(figsize=(2.4 + 1.9 * len(ops), 2.4))
    xs = [0.0] + [1.6 * (k + 1) for k in range(len(ops))] + [1.6 * (len(ops) + 1)]
    labels = ["$y$", *ops, "$y + \\cdot$"]
    for k, (x, text) in enumerate(zip(xs, labels, strict=True)):
        colour = OP_COLOURS.get(text, "#555555")
        ax.text(x, 0, text, ha="center", va="center", fontsize=8, color=colour if 0 < k <= len(ops) else "#000000",
                bbox=dict(boxstyle="round,pad=0.4", fc="#ffe5b4" if 0 < k <= len(ops) else "#c6e2ff", ec="#555555"))
        if k:
            ax.annotate("", xy=(x, 0), xytext=(xs[k - 1], 0),
                        arrowprops=dict(arrowstyle="-|>", color="#555555", lw=1.2, shrinkA=30, shrinkB=30))
            if 1 < k <= len(ops):
                ax.text((x + xs[k - 1]) / 2, 0.18, "ReLU", fontsize=6, ha="center", color="#777777")
    ax.annotate("", xy=(xs[-1], 0.25), xytext=(xs[0], 0.25),
                arrowprops=dict(arrowstyle="-|>", color="#bbbbbb", lw=1, ls="--", connectionstyle="arc3,rad=-0.3"))
    ax.set_xlim(-0.8, xs[-1] + 0.8)
    ax.set_ylim(-0.8, 1.2)
    ax.axis("off")
    ax.set_title(title or f"{genotype.space} chain cell; {genotype.macro()}", fontsize=9)
    return save(fig, stem)


def save(fig, stem: Path) -> list[Path]:
    """Write `stem`.svg and `stem`.png of a figure and close it."""
    fig.tight_layout()
    paths = [Path(f"{stem}.svg"), Path(f"{stem}.png")]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=120)
    plt.close(fig)
    return paths
