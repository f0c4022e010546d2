"""Evaluation figures are readable: labelled axes, legend clear of the data, one colour per agent."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgba

from headless_ad.evaluation import SuiteResult, run_baselines
from headless_ad.evaluation_summary import curves_figure, metric_tag
from headless_ad.plotting import agent_colour
from headless_ad.tasks import get_task


def suite_result(task_name: str, spec: str, horizon: int) -> SuiteResult:
    task = get_task(task_name)
    suite = task.parse_suite(spec, num_instances=6, horizon=horizon, train_seed=0)
    return SuiteResult(spec, task, suite, run_baselines(task, suite, seed=0))


def test_curves_figure_is_labelled_with_the_legend_outside_the_axes() -> None:
    result = suite_result("darkroom", "test_goals/test", horizon=200)
    figure = curves_figure(result)
    figure.canvas.draw()
    (axis,) = figure.axes
    assert axis.get_xlabel() == "episode" and axis.get_ylabel() == "return per episode"
    (legend,) = figure.legends
    renderer = figure.canvas.get_renderer()
    assert not legend.get_window_extent(renderer).overlaps(axis.get_window_extent(renderer))
    assert all(float(tick).is_integer() for tick in axis.get_xticks())
    for line in axis.get_lines():
        assert to_rgba(line.get_color()) == to_rgba(agent_colour(line.get_label(), "q_learning"))


def test_each_agent_keeps_its_colour_across_tasks() -> None:
    assert agent_colour("model_sample", "thompson") == agent_colour("model_sample", "q_learning")
    assert agent_colour("random", "thompson") == agent_colour("random", "linucb")
    assert agent_colour("thompson", "thompson") == agent_colour("q_learning", "q_learning")  # the source
    assert agent_colour("ucb", "thompson") == agent_colour("ucb", "thompson")
    assert (
        len({agent_colour(a, "thompson") for a in ("thompson", "ucb", "random", "model_argmax", "model_sample")}) == 5
    )


def test_metric_tags_are_tensorboard_friendly() -> None:
    assert metric_tag(get_task("bandit")) == "regret"
    assert metric_tag(get_task("darkroom")) == "return_last_50_episodes"
    assert np.isfinite(suite_result("bandit", "num_5", horizon=20).metric("ucb"))
