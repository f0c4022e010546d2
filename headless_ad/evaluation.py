"""In-context evaluation: the model acts in every instance of a suite, beside the source algorithm
and the other baselines on the same instances and seeds; normalized scores compare them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from headless_ad.action_embeddings import ActionScoring, ActionSetTooLarge
from headless_ad.model import HeadlessTransformer
from headless_ad.policy import ModelAgent, Selection, TemperatureSchedule
from headless_ad.rollout import Rollout, run_learner
from headless_ad.tasks.base import Suite, Task


@dataclass
class SuiteResult:
    """Every agent's rollout on one suite; the task says how to score a rollout."""

    suite: str
    task: Task
    spec: Suite
    rollouts: dict[str, Rollout] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Agents that cannot act on this suite, with the reason (an AD head narrower than its action sets)."""

    def metric(self, agent: str) -> float:
        if agent in self.not_applicable:
            return float("nan")
        return self.task.metric(self.rollouts[agent])

    def extra_metrics(self, agent: str) -> dict[str, float]:
        if agent in self.not_applicable:
            return {}
        return self.task.extra_metrics(self.spec, self.rollouts[agent])

    def normalized(self, agent: str) -> float:
        """(M_agent - M_random) / (M_source - M_random): 1 = as good as the source algorithm, 0 =
        random. For bandit regret this is (R_random - R_agent) / (R_random - R_source)."""
        random, source = self.metric("random"), self.metric(self.task.source_algorithm)
        gap = source - random
        return (self.metric(agent) - random) / gap if abs(gap) > 1e-8 else float("nan")


def run_baselines(task: Task, suite: Suite, seed: int, on_step: Callable[[], None] | None = None) -> dict[str, Rollout]:
    rollouts = {}
    for name in task.baselines:
        env = task.make_env(suite)
        learner = task.make_learner(name, env, suite, np.random.default_rng(seed))
        rollouts[name] = run_learner(env, learner, suite.horizon, seed, on_step)
    return rollouts


def run_model(
    task: Task,
    suite: Suite,
    model: HeadlessTransformer,
    selection: Selection,
    scoring: ActionScoring,
    seed: int,
    sample_temperature: float | TemperatureSchedule = 1.0,
    on_step: Callable[[], None] | None = None,
) -> Rollout:
    env = task.make_env(suite)
    agent = ModelAgent(model, env.action_mask, selection, scoring, seed, sample_temperature=sample_temperature)
    was_training = model.training
    model.eval()
    try:
        return run_learner(env, agent, suite.horizon, seed, on_step)
    finally:
        model.train(was_training)


def evaluate_in_context(
    task: Task,
    model: HeadlessTransformer,
    suites: dict[str, Suite],
    baselines: dict[str, dict[str, Rollout]],
    selections: tuple[Selection, ...],
    scoring: ActionScoring,
    seed: int,
    sample_temperature: float | TemperatureSchedule = 1.0,
    on_step: Callable[[], None] | None = None,
) -> list[SuiteResult]:
    """Run the model on every suite (all instances of a suite batched) beside precomputed baselines."""
    results = []
    for name, suite in suites.items():
        result = SuiteResult(name, task, suite, dict(baselines[name]))
        for selection in selections:
            try:
                result.rollouts[f"model_{selection}"] = run_model(
                    task, suite, model, selection, scoring, seed, sample_temperature, on_step
                )
            except ActionSetTooLarge as error:
                result.not_applicable[f"model_{selection}"] = f"the model cannot act here: {error}"
        results.append(result)
    return results
