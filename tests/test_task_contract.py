"""What the shared pipeline needs of every task, checked for each registered task and for the
example plug-in (a user's own gymnasium env through `GymTask`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from headless_ad.evaluation import SuiteResult, run_baselines
from headless_ad.learners import RandomLearner
from headless_ad.rollout import run_learner
from headless_ad.tasks import TASKS, Task, entry_point_tasks, get_task
from headless_ad.tasks.base import missing_members

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` as a user's own package

SPECS = [
    *sorted(TASKS),
    "examples.jump_corridor:TASK",
    *sorted(entry_point_tasks()),  # installed plug-ins
    *filter(None, os.environ.get("HEADLESS_AD_TASKS", "").split(",")),
]
"""Every registered task, the example, installed plug-ins, and your own:
`HEADLESS_AD_TASKS=my_package.module:Task,... pytest tests/test_task_contract.py`."""
HORIZON = {"darkroom": 1_000, "minigrid": 1_000, "minigrid_lavagap": 1_000, "minigrid_unlock": 1_000}
"""Steps per history in these small suites: enough for each source algorithm to beat random."""


@pytest.fixture(params=SPECS)
def task(request: pytest.FixtureRequest) -> Task:
    return get_task(request.param)


def small_suite(task: Task, seed: int = 0, num: int = 8):
    return task.train_suite(num, HORIZON.get(task.name, 120), seed)


def random_rollout(task: Task, suite, seed: int = 0):
    env = task.make_env(suite)
    return run_learner(env, RandomLearner(env.action_mask, np.random.default_rng(seed)), suite.horizon, seed), env


def test_the_task_declares_what_the_pipeline_reads(task: Task) -> None:
    assert missing_members(task) == []
    assert task.source_algorithm in task.baselines and "random" in task.baselines  # normalized scores need both
    assert task.observation_kind in ("none", "discrete", "continuous")
    assert isinstance(task.episodic, bool) and len(task.curve_labels) == 2 and task.default_eval_suites
    train_size = task.observation_size(small_suite(task))
    for name in task.default_eval_suites:  # a model trained on the default suite acts in every default one
        assert task.observation_size(task.parse_suite(name, 4, 50, train_seed=0)) == train_size, name


def test_suites_are_reproducible_by_seed(task: Task) -> None:
    first, again, other = small_suite(task), small_suite(task), small_suite(task, seed=1)
    assert first.describe() == again.describe() and first.describe() != other.describe()
    json.dumps(first.describe())  # saved with stores and results
    (a, env_a), (b, env_b), (c, env_c) = (random_rollout(task, suite) for suite in (first, again, other))
    np.testing.assert_array_equal(env_a.action_mask, env_b.action_mask)
    for name in ("actions", "rewards", "observations", "dones"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    same_mask = env_a.action_mask.shape == env_c.action_mask.shape and (env_a.action_mask == env_c.action_mask).all()
    assert not (same_mask and np.array_equal(a.rewards, c.rewards)), "seed 1 gives the instances of seed 0"


def test_masks_and_observations_are_what_the_model_expects(task: Task) -> None:
    suite = small_suite(task)
    rollout, env = random_rollout(task, suite)
    mask = env.action_mask
    assert mask.dtype == bool and mask.shape == (suite.num_instances, env.single_action_space.n)
    assert mask.any(axis=1).all()
    assert mask[np.arange(suite.num_instances)[:, None], rollout.actions].all()  # no action outside the mask
    size, observed = task.observation_size(suite), rollout.observations
    if task.observation_kind == "discrete":
        assert np.issubdtype(observed.dtype, np.integer) and observed.min() >= 0 and observed.max() < size
    elif task.observation_kind == "continuous":
        assert observed.shape == (suite.num_instances, suite.horizon, size) and np.isfinite(observed).all()
    else:
        assert size == 0
    if task.episodic:
        assert rollout.dones.any()


def test_the_vector_env_holds_the_per_instance_envs(task: Task) -> None:
    """Instance i depends only on the suite's seed and i: built alone, it is row i of the whole
    (collection builds suites in chunks; evaluation compares agents on the same instances)."""
    suite = small_suite(task)
    whole = task.make_env(suite)
    first_observations, _ = whole.reset(seed=0)
    for i in range(suite.num_instances):
        alone = task.make_env(suite, slice(i, i + 1))
        width = alone.action_mask.shape[1]
        np.testing.assert_array_equal(alone.action_mask[0], whole.action_mask[i, :width])
        assert not whole.action_mask[i, width:].any()
        if task.observation_kind != "continuous":  # (continuous ones here are random contexts)
            observation, _ = alone.reset(seed=0)
            np.testing.assert_array_equal(observation[0], first_observations[i])


def test_the_metric_tells_the_source_from_random(task: Task) -> None:
    """The source algorithm earns more reward than random, and the metric separates them, so a
    normalized score (1 = source, 0 = random) is defined, whichever way the metric points."""
    suite = small_suite(task)
    rollouts = run_baselines(task, suite, seed=0)
    source, random = rollouts[task.source_algorithm], rollouts["random"]
    assert source.rewards.mean() > random.rewards.mean()
    result = SuiteResult("train", task, suite, rollouts)
    assert np.isfinite(result.metric(task.source_algorithm)) and np.isfinite(result.metric("random"))
    assert result.normalized(task.source_algorithm) == pytest.approx(1.0)
    assert result.normalized("random") == pytest.approx(0.0)
    assert all(isinstance(value, float) for value in result.extra_metrics("random").values())
    x, y = task.curve(source)
    assert len(x) == len(y) and np.all(np.diff(x) > 0) and np.isfinite(y).all()


def test_per_instance_results_average_to_the_metric(task: Task) -> None:
    """What `evaluate` saves per instance for reports agrees with the table's metric."""
    suite = small_suite(task)
    rollout = run_baselines(task, suite, seed=0)[task.source_algorithm]
    metrics = task.instance_metrics(rollout)
    if metrics is None:  # a task may report no per-instance results
        assert task.instance_curves(rollout) is None
        return
    assert metrics.shape == (suite.num_instances,)
    assert np.nanmean(metrics) == pytest.approx(task.metric(rollout))
    x, curves = task.instance_curves(rollout)
    assert curves.shape == (suite.num_instances, len(x))
