"""Draws docs/figures/method.png, the Headless-AD schematic in the README (no measured numbers).

python docs/figures/method.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from headless_ad.files import atomic_output

PROMPT, HISTORY, MODEL, OUTPUT = "#4c72b0", "#dd8452", "#8172b3", "#55a868"


def box(ax, x: float, y: float, w: float, h: float, text: str, color: str, size: int = 9, alpha: float = 0.25) -> None:
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec=color,
                                alpha=alpha, lw=1.2))  # fmt: skip
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)


def arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, lw=1, color="#333333"))


def draw(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.1), dpi=100)
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 4.2)
    ax.axis("off")

    # Inputs: the available actions as a prompt, then one transition token per step.
    for i, label in enumerate(["$e(a_1)$", "$e(a_2)$", "...", "$e(a_K)$"]):
        box(ax, 0.3 + 0.75 * i, 0.5, 0.65, 0.6, label, PROMPT)
    ax.text(1.75, 0.15, "prompt: the available actions\n(a set: one position, full attention)", ha="center",
            va="center", fontsize=8)  # fmt: skip
    for i, label in enumerate(["$x_1$", "$x_2$", "...", "$x_t$"]):
        box(ax, 3.8 + 0.75 * i, 0.5, 0.65, 0.6, label, HISTORY)
    ax.text(5.25, 0.15, "history: one token per step, causal\n$x_t = f(o_{t-1}, e(a_{t-1}), r_{t-1}, d_{t-1}, o_t)$",
            ha="center", va="center", fontsize=8)  # fmt: skip

    box(ax, 0.3, 1.75, 6.65, 0.9, "causal transformer (no head over action indices)", MODEL, size=10)
    for x in (1.75, 5.25):
        arrow(ax, (x, 1.15), (x, 1.72))
    box(ax, 6.1, 3.2, 0.85, 0.6, "$h_t$", OUTPUT)
    arrow(ax, (6.5, 2.68), (6.5, 3.17))
    ax.text(5.95, 3.5, "output vector", ha="right", va="center", fontsize=8)

    # Scoring against the available actions only.
    box(ax, 7.6, 3.0, 4.1, 1.0, "scores $s(h_t, e(a))$ for available $a$\n(dot product or cosine / $\\tau$)", OUTPUT)
    arrow(ax, (7.0, 3.5), (7.57, 3.5))
    box(ax, 7.6, 1.6, 1.95, 1.0, "train: InfoNCE\ntarget = source's $a_t$", OUTPUT, size=8)
    box(ax, 9.75, 1.6, 1.95, 1.0, "act: sample or\nargmax", OUTPUT, size=8)
    arrow(ax, (8.6, 2.97), (8.6, 2.63))
    arrow(ax, (10.7, 2.97), (10.7, 2.63))
    ax.text(9.65, 0.85, "every batch draws fresh random orthonormal\nembeddings $e(\\cdot)$ for the action indices",
            ha="center", va="center", fontsize=8, style="italic")  # fmt: skip
    ax.set_title("Headless-AD: actions enter and leave the model only as random embeddings", fontsize=10)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


if __name__ == "__main__":
    draw(Path(__file__).with_suffix(".png"))
