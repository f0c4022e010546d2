"""MiniGrid worlds (DoorKey-5x5 by default) whose actions are sequences of 3 primitives (125 in all).

Splits (seeded, fixed by `split_seed`): the world's distinct layouts into 80% training and 20%
held-out layouts; the 125 macro-actions into 40% train actions (50) and 60% test actions (75), as
in Darkroom. Training instances pair a training layout with the train action set. Evaluation
crosses layout sets (train, held-out) with action sets (train, train permuted, first 50 test,
all 75 test, all 125). The source algorithm is tabular Q-learning over the state codes, with
small initial values (U(0, 1) is too optimistic against minigrid's discounted rewards).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache, cached_property
from typing import Any, ClassVar, Literal

import numpy as np

from envs.minigrid import (
    MINIGRID_VERSION,
    NUM_SEQUENCES,
    MiniGridMacro,
    MiniGridMacroVectorEnv,
    distinct_layouts,
    macro_table,
    shortest_path,
    world,
)
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
from headless_ad.tasks.darkroom import LAST_EPISODES, DarkroomTask

LayoutSet = Literal["train", "test"]
TRAIN_LAYOUT_SHARE = 0.8


@dataclass(frozen=True)
class MiniGridSuite:
    num_instances: int
    env_id: str = "MiniGrid-DoorKey-5x5-v0"
    layouts: LayoutSet = "train"
    actions: ActionSet = "train"
    horizon: int = 4_000
    """Steps (macro-actions) per history; episodes end early at the goal."""
    seed: int = 0
    episode_len: int = 20
    split_seed: int = 0
    min_actions: int = 0
    """When > 0, each instance offers a random subset of the action set (in random order) whose size
    is uniform in [min_actions, set size]; the list is padded with -1 past it. 0: the whole set."""
    minigrid_version: str = field(default=MINIGRID_VERSION, init=False)

    def __post_init__(self) -> None:
        world(self.env_id)  # an unknown or unsupported id fails here, in one line
        if self.num_instances < 1 or self.horizon < 1 or self.episode_len < 1:
            raise ValueError("num_instances, horizon and episode_len must be >= 1")
        if self.layouts not in ("train", "test"):
            raise ValueError(f"unknown layout set {self.layouts!r} (train, test)")
        if self.actions not in ACTION_SETS:
            raise ValueError(f"unknown action set {self.actions!r} ({', '.join(ACTION_SETS)})")
        if self.splits[f"{self.layouts}_layouts"].size == 0:
            raise ValueError(
                f"{self.env_id} has {distinct_layouts(self.env_id).size} distinct layout(s): none is held out"
            )
        if not 0 <= self.min_actions <= self.action_set.size:
            raise ValueError(
                f"min_actions must be in [0, {self.action_set.size}] (the {self.actions!r} set), got {self.min_actions}"
            )

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    @cached_property
    def splits(self) -> dict[str, np.ndarray]:
        """Layout seeds and macro indices of each split; depends only on env_id and split_seed."""
        return _splits(self.env_id, self.split_seed)

    @property
    def action_set(self) -> np.ndarray:
        """The macro indices this suite's instances draw from, in their base order."""
        return named_action_set(self.actions, self.splits["train_actions"], self.splits["test_actions"], NUM_SEQUENCES)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """(layout seeds (N,), action lists (N, K), -1 past an instance's own actions); row i
        depends only on the seed and i."""
        rng = np.random.default_rng(self.seed)
        layout_set = self.splits[f"{self.layouts}_layouts"]
        layouts = layout_set[rng.integers(0, layout_set.size, self.num_instances)]
        permuted = self.actions == "train_permuted"
        return layouts, instance_action_lists(rng, self.action_set, self.num_instances, permuted, self.min_actions)


@cache
def _splits(env_id: str, split_seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(split_seed)
    layouts = rng.permutation(distinct_layouts(env_id))
    num_train_layouts = round(TRAIN_LAYOUT_SHARE * layouts.size)
    sequences = rng.permutation(NUM_SEQUENCES)
    num_train_actions = round(0.4 * NUM_SEQUENCES)
    return {
        "train_layouts": np.sort(layouts[:num_train_layouts]),
        "test_layouts": np.sort(layouts[num_train_layouts:]),
        "train_actions": sequences[:num_train_actions],
        "test_actions": sequences[num_train_actions:],
    }


@cache
def _solvable(env_id: str, layout_seed: int, actions: tuple[int, ...]) -> bool:
    """Whether these actions reach the goal in this layout (cached: suites share layouts)."""
    return shortest_path(macro_table(env_id, [layout_seed]), 0, np.array(actions)) is not None


def check_solvable(env_id: str, layout_seeds: np.ndarray, action_set: np.ndarray, what: str) -> None:
    """One line naming a layout that the whole action set `what` cannot solve. (Random subsets,
    `min_actions`, may still leave an instance unsolvable; its source then never succeeds.)"""
    unique = [int(seed) for seed in np.unique(layout_seeds)]
    offered = tuple(int(action) for action in np.sort(action_set))
    bad = [seed for seed in unique if not _solvable(env_id, seed, offered)]
    if bad:
        raise ValueError(
            f"layout seed {bad[0]} of {env_id} cannot reach the goal with the {what} actions "
            f"({len(bad)} of {len(unique)} layouts cannot)"
        )


class MiniGridTask(Task):
    """One minigrid world as a family: its layouts, the macro-action splits and Q-learning histories."""

    observation_kind = "discrete"
    source_algorithm = "q_learning"
    baselines = ("q_learning", "random")
    default_eval_suites = tuple(
        f"{layouts}_layouts/{actions}" for layouts in ("train", "test") for actions in ACTION_SETS
    )
    metric_name = f"return (last {LAST_EPISODES} episodes)"
    curve_labels = ("episode", "return per episode")
    episodic = True

    train_suite_keys: ClassVar[dict[str, SpecKey]] = {
        "min_actions": suite_field("min_actions", int),
        "actions": suite_field("actions", str),
    }
    """`--collect.train-suite` keys: min_actions=K (instances offer random subsets of at least K of
    their action set), actions=train|test|all (the action set)."""

    def __init__(
        self, name: str, env_id: str, initial_q_scale: float = 0.01, epsilon_decay_fraction: float = 0.5
    ) -> None:
        self.name = name
        self.env_id = env_id
        self.initial_q_scale = initial_q_scale
        """Q-learning's initial values are U(0, initial_q_scale)."""
        self.epsilon_decay_fraction = epsilon_decay_fraction
        """Epsilon falls from 1 to 0 over this share of horizon / episode_len episodes."""

    def observation_size(self, suite: MiniGridSuite) -> int:
        return world(suite.env_id).num_codes

    def train_suite(self, num_instances: int, horizon: int, seed: int, options: str = "") -> MiniGridSuite:
        base = MiniGridSuite(num_instances=num_instances, env_id=self.env_id, horizon=horizon, seed=seed)
        return apply_spec(options, base, self.train_suite_keys, "--collect.train-suite")

    def parse_suite(self, spec: str, num_instances: int, horizon: int, train_seed: int) -> MiniGridSuite:
        """`<train|test>_layouts/<train|train_permuted|test_50|test|all>`, e.g. test_layouts/test, with
        an optional `,seed=N` for other instances of that kind (validation)."""
        name, _, seed_spec = spec.partition(",")
        if name not in self.default_eval_suites:
            raise ValueError(f"unknown {self.name} suite {name!r}; known: {', '.join(self.default_eval_suites)}")
        layouts, _, actions = name.partition("/")
        seed = 2_000 + self.default_eval_suites.index(name)
        if seed_spec:
            key, _, value = seed_spec.partition("=")
            if key != "seed" or not value.isdigit():
                raise ValueError(f"{self.name} suite {spec!r}: expected <suite>,seed=<integer>")
            seed = int(value)
        return MiniGridSuite(
            num_instances=num_instances,
            env_id=self.env_id,
            layouts=layouts.removesuffix("_layouts"),
            actions=actions,
            horizon=horizon,
            seed=seed,
        )

    def make_env(self, suite: MiniGridSuite, rows: slice | None = None) -> MiniGridMacroVectorEnv:
        layouts, actions = suite.sample()
        if rows is not None:
            layouts, actions = layouts[rows], actions[rows]
        check_solvable(suite.env_id, layouts, suite.action_set, repr(suite.actions))
        return MiniGridMacroVectorEnv(
            len(layouts), env_id=suite.env_id, layout_seeds=layouts, actions=actions,
            num_actions=(actions >= 0).sum(axis=1), max_episode_steps=suite.episode_len,
        )  # fmt: skip

    def make_learner(
        self, name: str, env: MiniGridMacroVectorEnv, suite: MiniGridSuite, rng: np.random.Generator
    ) -> Learner:
        if name == "q_learning":
            return QLearning(
                env.action_mask, rng, num_states=self.observation_size(suite),
                num_episodes=max(1, suite.horizon // suite.episode_len),
                decay_fraction=self.epsilon_decay_fraction, initial_q_scale=self.initial_q_scale,
            )  # fmt: skip
        if name == "random":
            return RandomLearner(env.action_mask, rng)
        raise ValueError(f"unknown {self.name} learner {name!r}; known: q_learning, random")

    def metric(self, rollout: Rollout) -> float:
        """Mean over instances of the return of each one's last 50 completed episodes."""
        return float(np.nanmean(DarkroomTask.last_episode_returns(rollout)))

    def instance_metrics(self, rollout: Rollout) -> np.ndarray:
        return DarkroomTask().instance_metrics(rollout)

    def instance_curves(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        return DarkroomTask().instance_curves(rollout)

    @staticmethod
    def success_rates(rollout: Rollout) -> np.ndarray:
        """(N,) share of each instance's last 50 completed episodes that reached the goal (rewarded)."""
        returns = DarkroomTask.episode_returns(rollout)
        count = (~np.isnan(returns)).sum(axis=1)
        position = np.arange(returns.shape[1])[None, :]
        last = (position >= count[:, None] - LAST_EPISODES) & (position < count[:, None])
        with np.errstate(invalid="ignore"):
            return (last & (np.nan_to_num(returns) > 0)).sum(axis=1) / np.minimum(count, LAST_EPISODES)

    def extra_metrics(self, suite: MiniGridSuite, rollout: Rollout) -> dict[str, float]:
        return {f"success rate (last {LAST_EPISODES} episodes)": float(np.nanmean(self.success_rates(rollout)))}

    def extra_curves(self, suite: MiniGridSuite, rollout: Rollout) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """On suites offering all 125 actions: the share of train and of test actions tried, per episode."""
        return actions_tried_by_episode(suite, rollout)

    def curve(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        return DarkroomTask().curve(rollout)

    can_render = True

    def render_episodes(
        self, suite: MiniGridSuite, rollout: Rollout, instance: int, episodes: list[int]
    ) -> list[np.ndarray]:
        """minigrid's own pictures of `episodes` of one instance: the start, then one frame per
        macro-action, replayed in the real env (which must end each episode where the rollout did)."""
        layouts, actions = suite.sample()
        offered = actions[instance][actions[instance] >= 0]
        env = MiniGridMacro(suite.env_id, int(layouts[instance]), offered, suite.episode_len, render_mode="rgb_array")
        return replay_frames(env, rollout, instance, episodes)


WORLDS = {
    "minigrid": "MiniGrid-DoorKey-5x5-v0",
    "minigrid_empty": "MiniGrid-Empty-Random-6x6-v0",
    "minigrid_lavagap": "MiniGrid-LavaGapS7-v0",
    "minigrid_unlock": "MiniGrid-Unlock-v0",
}
"""The registered minigrid tasks: each one world, with its own state-code vocabulary."""
