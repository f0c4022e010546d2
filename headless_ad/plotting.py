"""Figure conventions shared by training, evaluation and reports: one colour per agent everywhere."""

from __future__ import annotations

import zlib

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only; never a window

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

FIXED_COLOURS = {"model_argmax": "tab:blue", "model_sample": "tab:orange", "random": "tab:gray"}
SOURCE_COLOUR = "black"
OTHER_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:red")


def agent_colour(agent: str, source: str) -> str:
    """The same colour for an agent in every figure: the models and random fixed, the source
    algorithm black, any other agent (or method) by a stable hash of its name."""
    if agent == source:
        return SOURCE_COLOUR
    if agent in FIXED_COLOURS:
        return FIXED_COLOURS[agent]
    return OTHER_COLOURS[zlib.crc32(agent.encode()) % len(OTHER_COLOURS)]


def new_figure(width: float = 6.0, height: float = 3.5) -> tuple[Figure, plt.Axes]:
    """A figure whose layout keeps an outside legend and the axis labels inside the image."""
    figure, axis = plt.subplots(figsize=(width, height), layout="constrained")
    return figure, axis


def panel_grid(count: int, y_label: str, columns: int = 3) -> tuple[Figure, list[plt.Axes]]:
    """`count` panels of one figure, at most `columns` a row, room on the right for an outside
    legend, and `y_label` on the first panel of each row."""
    rows = -(-count // columns)
    width = min(count, columns)
    figure, grid = plt.subplots(
        rows, width, figsize=(3.4 * width + 2.4, 3.0 * rows), squeeze=False, layout="constrained"
    )
    axes = list(grid.flat)
    for unused in axes[count:]:
        unused.set_visible(False)
    for row in grid:
        row[0].set_ylabel(y_label)
    return figure, axes[:count]


def integer_ticks(axis: plt.Axes) -> None:
    """Episodes and steps are counted: no 2.5th episode on the x-axis."""
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def outside_legend(figure: Figure, handles: list | None = None, labels: list[str] | None = None) -> None:
    """The legend to the right of the axes, clear of the data (the figure needs
    layout="constrained", which makes room for it)."""
    if handles is None:
        figure.legend(loc="outside right upper", frameon=False)
    else:
        figure.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=8)
