"""Action sets of families whose instances offer lists of macro-actions (Darkroom, MiniGrid):
a seeded train/test split of the macro indices, five named sets over it, and per-instance lists."""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

from headless_ad.rollout import Rollout

ActionSet = Literal["train", "train_permuted", "test_50", "test", "all"]
ACTION_SETS: tuple[str, ...] = ("train", "train_permuted", "test_50", "test", "all")


class MacroActionSuite(Protocol):
    """A suite whose instances offer lists of macro indices drawn from a train/test split."""

    actions: ActionSet

    @property
    def splits(self) -> dict[str, np.ndarray]: ...

    def sample(self) -> tuple[np.ndarray, np.ndarray]: ...


def named_action_set(name: str, train_actions: np.ndarray, test_actions: np.ndarray, num_macros: int) -> np.ndarray:
    """The macro indices a named set draws from, in their base order (test_50: the first 50 test ones)."""
    return {
        "train": train_actions,
        "train_permuted": train_actions,
        "test_50": test_actions[:50],
        "test": test_actions,
        "all": np.arange(num_macros),
    }[name]


def instance_action_lists(
    rng: np.random.Generator, base: np.ndarray, num_instances: int, permuted: bool, min_actions: int
) -> np.ndarray:
    """(N, K) action lists, -1 past an instance's own: the base order for every instance, or an
    independent order per instance (`permuted`, and always with `min_actions`); with `min_actions`
    > 0 each keeps the first m of its order, m uniform in [min_actions, K]."""
    actions = np.broadcast_to(base, (num_instances, base.size))
    if permuted or min_actions:
        # argsort of uniform keys is a uniform permutation.
        actions = np.take_along_axis(actions, rng.random(actions.shape).argsort(axis=1), axis=1)
    if min_actions:
        sizes = rng.integers(min_actions, base.size + 1, num_instances)
        actions = np.where(np.arange(base.size)[None, :] < sizes[:, None], actions, -1)
    return np.ascontiguousarray(actions)


def actions_tried_curves(
    offered: np.ndarray, actions: np.ndarray, dones: np.ndarray, splits: dict[str, np.ndarray]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per named split of the macro indices (e.g. train and test actions): each instance's share of
    them tried by the end of every episode, over the episodes every instance completed.

    `offered` (N, K) lists each instance's macro indices, `actions` (N, T) indexes into it, `dones`
    (N, T) marks episode ends. Returns {name: (episodes 1..E, (N, E) shares)}.
    """
    num, steps = actions.shape
    common = int(dones.sum(axis=1).min())
    if common == 0:
        return {}
    rows = np.broadcast_to(np.arange(num)[:, None], actions.shape)
    macros = offered[rows, actions]
    first_try = np.full((num, int(offered.max()) + 1), steps)  # step at which each macro was first taken
    np.minimum.at(first_try, (rows, macros), np.broadcast_to(np.arange(steps), actions.shape))
    # A stable sort of ~dones puts each row's episode-end steps first, in order.
    episode_ends = np.argsort(~dones, axis=1, kind="stable")[:, :common]
    episodes = np.arange(1, common + 1)
    return {
        name: (episodes, (first_try[:, split][:, None, :] <= episode_ends[:, :, None]).mean(axis=2))
        for name, split in splits.items()
    }


def actions_tried_by_episode(suite: MacroActionSuite, rollout: Rollout) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """On suites offering all the macro-actions: the share of the train and of the test actions each
    instance tried by the end of every episode (does the model explore actions it never trained on?)."""
    if suite.actions != "all":
        return {}
    _, offered = suite.sample()
    splits = {f"{name} actions tried": suite.splits[f"{name}_actions"] for name in ("train", "test")}
    return actions_tried_curves(offered, rollout.actions, rollout.dones, splits)
