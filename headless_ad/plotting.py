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


def integer_ticks(axis: plt.Axes) -> None:
    """Episodes and steps are counted: no 2.5th episode on the x-axis."""
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def outside_legend(figure: Figure) -> None:
    """The legend to the right of the axes, clear of the data."""
    figure.legend(loc="outside right upper", frameon=False)
