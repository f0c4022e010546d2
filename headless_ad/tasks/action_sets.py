"""Action sets of families whose instances offer lists of macro-actions (Darkroom, MiniGrid):
a seeded train/test split of the macro indices, five named sets over it, and per-instance lists."""

from __future__ import annotations

from typing import Literal

import numpy as np

ActionSet = Literal["train", "train_permuted", "test_50", "test", "all"]
ACTION_SETS: tuple[str, ...] = ("train", "train_permuted", "test_50", "test", "all")


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
