"""One evaluation summarised for people: a markdown table of every agent's metric and the models'
normalized scores, the learning-curve figure of a suite, and its TensorBoard tag names."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from headless_ad.evaluation import SuiteResult
from headless_ad.files import atomic_output
from headless_ad.tasks.base import Task


def format_table(results: list[SuiteResult], agents: list[str]) -> str:
    """Markdown table: every agent's metric (the task's), and the models' normalized score."""
    model_agents = [a for a in agents if a.startswith("model")]
    header = ["suite", *agents, *[f"normalized {a.removeprefix('model_')}" for a in model_agents]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        cells = [result.suite, *[f"{result.metric(a):.2f}" for a in agents]]
        cells += [f"{result.normalized(a):.3f}" for a in model_agents]
        cells = ["n/a" if cell == "nan" and result.not_applicable else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    reasons = sorted({f"{r.suite}: {reason}" for r in results for reason in r.not_applicable.values()})
    if reasons:
        lines += ["", *[f"n/a on {reason}" for reason in reasons]]
    extra_rows = [
        (result.suite, agent, name, value)
        for result in results
        for agent in agents
        for name, value in result.extra_metrics(agent).items()
    ]
    if extra_rows:
        lines += ["", "| suite | agent | measure | value |", "|---|---|---|---|"]
        lines += [f"| {suite} | {agent} | {name} | {value:.3f} |" for suite, agent, name, value in extra_rows]
    return "\n".join(lines)


def curves_figure(result: SuiteResult):
    """Every agent's mean learning curve on one suite (x: steps or episodes, y: the task's measure)."""
    from headless_ad.plotting import agent_colour, integer_ticks, new_figure, outside_legend

    figure, axis = new_figure()
    for name, rollout in result.rollouts.items():
        axis.plot(*result.task.curve(rollout), label=name, color=agent_colour(name, result.task.source_algorithm))
    axis.set_xlabel(result.task.curve_labels[0])
    axis.set_ylabel(result.task.curve_labels[1])
    axis.set_title(f"{result.suite} ({result.spec.num_instances} instances, mean)")
    integer_ticks(axis)
    outside_legend(figure)
    return figure


def metric_tag(task: Task) -> str:
    """The task's metric name as a TensorBoard tag component: 'return (last 50 episodes)' ->
    'return_last_50_episodes'."""
    return re.sub(r"[^a-z0-9]+", "_", task.metric_name.lower()).strip("_")


def save_curves(results: list[SuiteResult], path: Path) -> None:
    """Mean curves (the task's: cumulative regret per step, return per episode) as one .npz."""
    arrays = {
        f"{r.suite}/{name}": np.stack(r.task.curve(rollout)) for r in results for name, rollout in r.rollouts.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
