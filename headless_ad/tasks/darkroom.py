"""Darkroom 9x9 whose actions are sequences of 3 atomic moves (125 in all), as in the paper.

Splits (seeded, fixed by `split_seed`): the 80 non-centre cells into 85% train goals and 15%
held-out goals; the 125 action sequences into 40% train actions (50) and 60% test actions (75).
Training instances pair a train goal with the train action set. Evaluation crosses goal sets
(train, test) with action sets (train, train permuted, first 50 test, all 75 test, all 125).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np

from envs.darkroom import Darkroom, DarkroomVectorEnv, centre_cell
from headless_ad.episode_gifs import replay_frames
from headless_ad.learners import Learner, QLearning, RandomLearner
from headless_ad.rollout import Rollout
from headless_ad.tasks.action_sets import (
    ACTION_SETS,
    ActionSet,
    actions_tried_by_episode,
    instance_action_lists,
    named_action_set,
)
from headless_ad.tasks.base import SpecKey, Task, apply_spec, suite_field

GoalSet = Literal["train", "test"]
LAST_EPISODES = 50


@dataclass(frozen=True)
class DarkroomSuite:
    num_instances: int
    goals: GoalSet = "train"
    actions: ActionSet = "train"
    horizon: int = 4_000
    """Steps per history (episodes end early when the goal is reached)."""
    seed: int = 0
    size: int = 9
    action_seq_len: int = 3
    episode_len: int = 20
    split_seed: int = 0
    min_actions: int = 0
    """When > 0, each instance offers a random subset of the action set (in random order) whose size
    is uniform in [min_actions, set size]; the list is padded with -1 past it. 0: the whole set."""

    def __post_init__(self) -> None:
        if self.size < 2:
            raise ValueError(f"the grid needs size >= 2, got size={self.size}")
        if self.num_instances < 1 or self.horizon < 1 or self.episode_len < 1:
            raise ValueError("num_instances, horizon and episode_len must be >= 1")
        if self.goals not in ("train", "test"):
            raise ValueError(f"unknown goal set {self.goals!r} (train, test)")
        if self.actions not in ACTION_SETS:
            raise ValueError(f"unknown action set {self.actions!r} ({', '.join(ACTION_SETS)})")
        if not 0 <= self.min_actions <= self.action_set.size:
            raise ValueError(
                f"min_actions must be in [0, {self.action_set.size}] (the {self.actions!r} set), got {self.min_actions}"
            )

    def describe(self) -> dict[str, Any]:
        described = asdict(self)
        if not self.min_actions:  # stores collected before min_actions existed stay reusable
            del described["min_actions"]
        return described

    @cached_property
    def splits(self) -> dict[str, np.ndarray]:
        """Goal cells and action-sequence indices of each split; depends only on split_seed and sizes."""
        rng = np.random.default_rng(self.split_seed)
        cells = np.delete(np.arange(self.size * self.size), centre_cell(self.size))
        cells = rng.permutation(cells)
        num_train_goals = round(0.85 * cells.size)
        sequences = rng.permutation(5**self.action_seq_len)
        num_train_actions = round(0.4 * sequences.size)
        return {
            "train_goals": np.sort(cells[:num_train_goals]),
            "test_goals": np.sort(cells[num_train_goals:]),
            "train_actions": sequences[:num_train_actions],
            "test_actions": sequences[num_train_actions:],
        }

    @property
    def action_set(self) -> np.ndarray:
        """The action-sequence indices this suite's instances draw from, in their base order."""
        splits = self.splits
        return named_action_set(self.actions, splits["train_actions"], splits["test_actions"], 5**self.action_seq_len)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """(goals (N,), action lists (N, K), -1 past an instance's own actions); row i depends only
        on the seed and i."""
        rng = np.random.default_rng(self.seed)
        goal_set = self.splits[f"{self.goals}_goals"]
        goals = goal_set[rng.integers(0, goal_set.size, self.num_instances)]
        permuted = self.actions == "train_permuted"
        return goals, instance_action_lists(rng, self.action_set, self.num_instances, permuted, self.min_actions)


class DarkroomTask(Task):
    name = "darkroom"
    observation_kind = "discrete"
    source_algorithm = "q_learning"
    baselines = ("q_learning", "random")
    default_eval_suites = tuple(
        f"{goals}_goals/{actions}"
        for goals in ("train", "test")
        for actions in ("train", "train_permuted", "test_50", "test", "all")
    )
    metric_name = f"return (last {LAST_EPISODES} episodes)"
    curve_labels = ("episode", "return per episode")
    episodic = True

    train_suite_keys: ClassVar[dict[str, SpecKey]] = {
        "min_actions": suite_field("min_actions", int),
        "actions": suite_field("actions", str),
    }
    """`--collect.train-suite` keys: min_actions=K (rooms offer random subsets of at least K of their
    action set), actions=train|test|all (the action set; test and all are for references that are
    meant to know the held-out actions, such as AD trained on them)."""

    def train_suite(self, num_instances: int, horizon: int, seed: int, options: str = "") -> DarkroomSuite:
        base = DarkroomSuite(num_instances=num_instances, horizon=horizon, seed=seed)
        return apply_spec(options, base, self.train_suite_keys, "--collect.train-suite")

    def parse_suite(self, spec: str, num_instances: int, horizon: int, train_seed: int) -> DarkroomSuite:
        """`<train|test>_goals/<train|train_permuted|test_50|test|all>`, e.g. test_goals/test, with an
        optional `,seed=N` for other rooms of that kind (validation, e.g. train_goals/test,seed=77)."""
        name, _, seed_spec = spec.partition(",")
        if name not in self.default_eval_suites:
            raise ValueError(f"unknown darkroom suite {name!r}; known: {', '.join(self.default_eval_suites)}")
        goals, _, actions = name.partition("/")
        seed = 2_000 + self.default_eval_suites.index(name)
        if seed_spec:
            key, _, value = seed_spec.partition("=")
            if key != "seed" or not value.isdigit():
                raise ValueError(f"darkroom suite {spec!r}: expected <suite>,seed=<integer>")
            seed = int(value)
        return DarkroomSuite(
            num_instances=num_instances, goals=goals.removesuffix("_goals"), actions=actions, horizon=horizon, seed=seed
        )

    def observation_size(self, suite: DarkroomSuite) -> int:
        return suite.size * suite.size

    def make_env(self, suite: DarkroomSuite, rows: slice | None = None) -> DarkroomVectorEnv:
        goals, actions = suite.sample()
        if rows is not None:
            goals, actions = goals[rows], actions[rows]
        return DarkroomVectorEnv(
            len(goals), goals=goals, actions=actions, num_actions=(actions >= 0).sum(axis=1), size=suite.size,
            action_seq_len=suite.action_seq_len, max_episode_steps=suite.episode_len,
        )  # fmt: skip

    def make_learner(
        self, name: str, env: DarkroomVectorEnv, suite: DarkroomSuite, rng: np.random.Generator
    ) -> Learner:
        if name == "q_learning":
            # Epsilon decays over 90% of the episodes a history holds if no episode ends early.
            episodes = max(1, suite.horizon // suite.episode_len)
            return QLearning(env.action_mask, rng, num_states=env.size * env.size, num_episodes=episodes)
        if name == "random":
            return RandomLearner(env.action_mask, rng)
        raise ValueError(f"unknown darkroom learner {name!r}; known: q_learning, random")

    @staticmethod
    def episode_returns(rollout: Rollout) -> np.ndarray:
        """(N, E) return of every completed episode, NaN-padded where an instance completed fewer."""
        num, _ = rollout.rewards.shape
        episode = np.cumsum(rollout.dones, axis=1) - rollout.dones  # episode index of each step
        count = rollout.dones.sum(axis=1)
        width = max(int(count.max()), 1)
        complete = episode < count[:, None]
        flat = (np.arange(num)[:, None] * width + episode)[complete]
        returns = np.bincount(flat, weights=rollout.rewards[complete], minlength=num * width).reshape(num, width)
        return np.where(np.arange(width)[None, :] < count[:, None], returns, np.nan)

    @classmethod
    def last_episode_returns(cls, rollout: Rollout) -> np.ndarray:
        """(N,) mean return over each instance's last 50 completed episodes (NaN where none completed)."""
        returns = cls.episode_returns(rollout)
        count = (~np.isnan(returns)).sum(axis=1)
        position = np.arange(returns.shape[1])[None, :]
        last = (position >= count[:, None] - LAST_EPISODES) & (position < count[:, None])
        with np.errstate(invalid="ignore"):  # an instance without a completed episode stays NaN
            return np.nansum(np.where(last, returns, 0.0), axis=1) / np.minimum(count, LAST_EPISODES)

    can_render = True

    def render_episodes(
        self, suite: DarkroomSuite, rollout: Rollout, instance: int, episodes: list[int]
    ) -> list[np.ndarray]:
        """The grid at the start of each of `episodes` of one instance, then after every action,
        replayed in the single-instance env (which must end each episode where the rollout did)."""
        goals, actions = suite.sample()
        offered = actions[instance][actions[instance] >= 0]
        env = Darkroom(
            suite.size, int(goals[instance]), offered, suite.action_seq_len, suite.episode_len, render_mode="rgb_array"
        )
        return replay_frames(env, rollout, instance, episodes)

    def metric(self, rollout: Rollout) -> float:
        """Mean over instances of the return of each one's last 50 completed episodes."""
        return float(np.nanmean(self.last_episode_returns(rollout)))

    def extra_metrics(self, suite: DarkroomSuite, rollout: Rollout) -> dict[str, float]:
        """On suites offering all 125 actions: the mean fraction of the train and of the test
        actions each instance tried (does the model explore actions it never saw in training?)."""
        if suite.actions != "all":
            return {}
        _, offered = suite.sample()
        tried = np.zeros(offered.shape, dtype=bool)  # indexed by action sequence, as `offered` is
        rows = np.arange(len(offered))[:, None]
        tried[rows, offered[rows, rollout.actions]] = True
        return {
            "train actions tried": float(tried[:, suite.splits["train_actions"]].mean()),
            "test actions tried": float(tried[:, suite.splits["test_actions"]].mean()),
        }

    def extra_curves(self, suite: DarkroomSuite, rollout: Rollout) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """On suites offering all 125 actions: each instance's share of the train and of the test
        actions tried by the end of every episode (the paper's exploration figure)."""
        return actions_tried_by_episode(suite, rollout)

    def curve(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        returns = self.episode_returns(rollout)
        common = int((~np.isnan(returns)).sum(axis=1).min())  # episodes every instance completed
        return np.arange(1, common + 1), returns[:, :common].mean(axis=0)

    def instance_metrics(self, rollout: Rollout) -> np.ndarray:
        """(N,) each room's mean return over its last 50 episodes (NaN where none completed);
        `metric` is their mean over rooms that completed one."""
        return self.last_episode_returns(rollout)

    def instance_curves(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        """(x, (N, E)) each room's return per episode over the episodes every room completed."""
        returns = self.episode_returns(rollout)
        common = int((~np.isnan(returns)).sum(axis=1).min())
        return np.arange(1, common + 1), returns[:, :common]
