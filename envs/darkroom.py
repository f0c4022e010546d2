"""Darkroom with composite actions, whose set of actions varies per instance (Headless-AD, Sinii et al. 2024).

The agent walks a `size` x `size` grid from the centre cell towards an unseen goal cell. An
*action* is a sequence of `action_seq_len` atomic moves (noop, up, down, left, right), so there
are 5**action_seq_len possible actions; each instance offers its own ordered subset of them,
given as indices into `action_sequences(action_seq_len)`.

Taking an action applies its moves one by one, clipping at the walls. If any sub-step lands on
the goal the reward is 1, the agent stops there (the rest of the sequence is not executed) and
the episode terminates; otherwise the reward is 0. Episodes are truncated after
`max_episode_steps` actions. Observations are cell indices `row * size + col`; the goal is given
the same way.

`Darkroom` is a plain `gymnasium.Env` that simulates the moves directly; `DarkroomVectorEnv`
steps many instances with table look-ups and resets finished ones within the same step.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

NUM_MOVES = 5
# (row, col) change of each atomic move: noop, up, down, left, right.
MOVE_DELTAS = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)


def action_sequences(action_seq_len: int = 3) -> np.ndarray:
    """All 5**action_seq_len move sequences, shape (5**L, L), in `itertools.product` order.

    Row k is the sequence of action index k, so index 0 is all noops and index 5**L - 1 is all
    moves right.
    """
    if action_seq_len < 1:
        raise ValueError(f"action_seq_len must be >= 1, got {action_seq_len}")
    return np.array(list(itertools.product(range(NUM_MOVES), repeat=action_seq_len)), dtype=np.int64)


def centre_cell(size: int) -> int:
    """The start cell: the middle of the grid (the lower-right of the middle four when size is even)."""
    return (size // 2) * size + size // 2


def random_goals(num_goals: int, size: int = 9, seed: int = 0) -> np.ndarray:
    """`num_goals` goal cells drawn uniformly from the non-centre cells.

    Prefix-stable: the first k goals do not depend on `num_goals`, so a single env with the same
    seed gets the first goal of a vector env.
    """
    _check_size(size)
    goals = np.random.default_rng(seed).integers(0, size * size - 1, num_goals)
    # Drawing from C - 1 cells and skipping the centre keeps the draw uniform over the rest.
    return goals + (goals >= centre_cell(size))


def _check_size(size: int) -> None:
    if size < 2:
        raise ValueError(f"the grid needs size >= 2, got size={size}")


def _check_common(size: int, action_seq_len: int, max_episode_steps: int) -> None:
    _check_size(size)
    if action_seq_len < 1:
        raise ValueError(f"action_seq_len must be >= 1, got {action_seq_len}")
    if max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")


def _check_goals(goals: np.ndarray, size: int) -> None:
    outside = (goals < 0) | (goals >= size * size)
    if np.any(outside):
        bad = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"goal {goals[bad]} of instance {bad} is outside the {size}x{size} grid (cells 0..{size * size - 1})"
        )


def _check_action_rows(table: np.ndarray, mask: np.ndarray, num_sequences: int) -> None:
    """Available entries must be valid sequence indices, each listed at most once per instance."""
    outside = mask & ((table < 0) | (table >= num_sequences))
    if np.any(outside):
        row, col = np.argwhere(outside)[0]
        raise ValueError(
            f"action index {table[row, col]} of instance {row} is outside [0, {num_sequences}) "
            f"(there are {num_sequences} action sequences)"
        )
    # Padding becomes distinct negatives so only real entries can collide after sorting.
    keyed = np.sort(np.where(mask, table, -1 - np.arange(table.shape[1])), axis=1)
    repeated = keyed[:, 1:] == keyed[:, :-1]
    if np.any(repeated):
        row, col = np.argwhere(repeated)[0]
        raise ValueError(f"instance {row} lists action index {keyed[row, col]} more than once")


def _trajectories(size: int, action_seq_len: int) -> np.ndarray:
    """Cell after each sub-step of every sequence from every cell, shape (size**2, 5**L, L).

    The goal is ignored here; instances apply it on top, so this table is shared.
    """
    sequences = action_sequences(action_seq_len)
    cells = np.arange(size * size)
    rows = np.repeat(cells[:, None] // size, len(sequences), axis=1)
    cols = np.repeat(cells[:, None] % size, len(sequences), axis=1)
    out = np.empty((size * size, len(sequences), action_seq_len), dtype=np.int64)
    for step in range(action_seq_len):
        rows = np.clip(rows + MOVE_DELTAS[sequences[:, step], 0], 0, size - 1)
        cols = np.clip(cols + MOVE_DELTAS[sequences[:, step], 1], 0, size - 1)
        out[:, :, step] = rows * size + cols
    return out


def _transition_tables(
    size: int, action_seq_len: int, goals: np.ndarray, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per instance, cell and action: the next cell and whether the goal is reached, (N, C, K) each."""
    # The smallest integer type that holds a cell index keeps (N, C, K) tables small.
    cell_dtype = np.min_scalar_type(size * size - 1)
    paths = _trajectories(size, action_seq_len).astype(cell_dtype)
    reaches = np.zeros((len(goals), size * size, table.shape[1]), dtype=bool)
    for step in range(action_seq_len):
        # paths[:, table, step] is (C, N, K); one sub-step at a time avoids an (N, C, K, L) array.
        reaches |= np.moveaxis(paths[:, table, step], 0, 1) == goals[:, None, None]
    last = np.moveaxis(paths[:, table, -1], 0, 1)
    next_cell = np.where(reaches, goals[:, None, None], last).astype(cell_dtype)
    return next_cell, reaches


def _min_steps(next_cell: np.ndarray, reaches: np.ndarray, mask: np.ndarray, start: int) -> np.ndarray:
    """Fewest actions from `start` to the goal per instance (-1 where the goal cannot be reached)."""
    num_envs, num_cells, _ = next_cell.shape
    unreached = num_cells + 1  # longer than any shortest path
    # Column `num_cells` is a sink that stays unreached; unavailable and goal-reaching actions point there.
    targets = np.where(mask[:, None, :] & ~reaches, next_cell, num_cells)
    dist = np.full((num_envs, num_cells + 1), unreached, dtype=np.int16 if num_cells < 30_000 else np.int32)
    dist[:, :num_cells][(reaches & mask[:, None, :]).any(axis=2)] = 1
    rows = np.arange(num_envs)[:, None, None]
    for _ in range(num_cells):
        # Bellman update of shortest path lengths; it settles after (longest shortest path) rounds.
        via = dist[rows, targets].min(axis=2) + 1
        new = np.minimum(dist[:, :num_cells], via)
        if np.array_equal(new, dist[:, :num_cells]):
            break
        dist[:, :num_cells] = new
    return np.where(dist[:, start] >= unreached, -1, dist[:, start]).astype(np.int64)


class Darkroom(gym.Env[np.int64, np.int64]):
    """One Darkroom instance.

    `goal` is a cell index `row * size + col` (default: a random non-centre cell drawn with
    `goal_seed`, the same as the first goal of `DarkroomVectorEnv(goal_seed=goal_seed)`).
    `actions` lists the sequence indices (into `action_sequences(action_seq_len)`) this instance
    offers, in order: action k of the action space is sequence `actions[k]`. Default: all.
    `render_mode="rgb_array"`: `render()` draws the grid (the agent red, the goal green, the start
    cell outlined), so that episodes can be watched (`evaluate --gifs`); the agent never sees it.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    cell_pixels = 16

    def __init__(
        self,
        size: int = 9,
        goal: int | None = None,
        actions: Sequence[int] | np.ndarray | None = None,
        action_seq_len: int = 3,
        max_episode_steps: int = 20,
        goal_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        _check_common(size, action_seq_len, max_episode_steps)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        sequences = action_sequences(action_seq_len)
        if goal is None:
            goal = int(random_goals(1, size, goal_seed)[0])
        if isinstance(goal, bool) or not isinstance(goal, int | np.integer):
            raise ValueError(f"goal must be a cell index row * size + col, got {goal!r}")
        _check_goals(np.array([goal]), size)
        actions = np.arange(len(sequences)) if actions is None else np.asarray(actions, dtype=np.int64)
        if actions.ndim != 1:
            raise ValueError(f"actions must be a 1-D list of sequence indices, got shape {actions.shape}")
        if actions.size == 0:
            raise ValueError("the action list is empty: an instance needs at least one action")
        _check_action_rows(actions[None, :], np.ones((1, actions.size), dtype=bool), len(sequences))

        self.size = size
        self.goal = int(goal)
        self.actions = actions
        self.action_seq_len = action_seq_len
        self.max_episode_steps = max_episode_steps
        self.start = centre_cell(size)
        self.sequences = sequences[actions]  # (K, L) moves of each available action
        self.observation_space = spaces.Discrete(size * size)
        self.action_space = spaces.Discrete(actions.size)
        self._cell = self.start
        self._steps = 0

    @cached_property
    def min_steps(self) -> int:
        """Fewest actions that reach the goal from the start (-1 if this action list cannot reach it)."""
        next_cell, reaches = _transition_tables(
            self.size, self.action_seq_len, np.array([self.goal]), self.actions[None, :]
        )
        return int(_min_steps(next_cell, reaches, np.ones((1, self.actions.size), dtype=bool), self.start)[0])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self._cell = self.start
        self._steps = 0
        return np.int64(self._cell), {}

    def step(self, action: int) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not one of the {self.action_space.n} actions")
        row, col = divmod(self._cell, self.size)
        reached = False
        for move in self.sequences[int(action)]:
            row = min(max(row + int(MOVE_DELTAS[move, 0]), 0), self.size - 1)
            col = min(max(col + int(MOVE_DELTAS[move, 1]), 0), self.size - 1)
            if row * self.size + col == self.goal:
                reached = True
                break  # the agent stops on the goal
        self._cell = row * self.size + col
        self._steps += 1
        # Like gymnasium's TimeLimit, the last step is truncated even if it also terminates.
        return np.int64(self._cell), float(reached), reached, self._steps >= self.max_episode_steps, {}

    def render(self) -> np.ndarray | None:
        """(H, W, 3) uint8: dark cells, the start outlined, the goal green, the agent red on top."""
        if self.render_mode != "rgb_array":
            return None
        pixels, size = self.cell_pixels, self.size
        image = np.full((size * pixels, size * pixels, 3), 40, dtype=np.uint8)
        image[::pixels, :] = image[:, ::pixels] = 70  # grid lines

        def paint(cell: int, colour: tuple[int, int, int], margin: int) -> None:
            row, col = divmod(cell, size)
            top, left = row * pixels + margin, col * pixels + margin
            image[top : top + pixels - 2 * margin + 1, left : left + pixels - 2 * margin + 1] = colour

        paint(self.start, (120, 120, 120), 1)
        paint(self.start, (40, 40, 40), 3)
        paint(self.goal, (60, 200, 80), 1)
        paint(self._cell, (230, 60, 50), 4)
        return image


class DarkroomVectorEnv(gym.vector.VectorEnv):
    """`num_envs` Darkroom instances stepped together with numpy.

    `goals` (num_envs,) are cell indices (default: `random_goals(num_envs, size, goal_seed)`).
    `actions` (num_envs, max_actions) holds each instance's sequence indices; instance i offers
    the first `num_actions[i]` of its row (default: the whole row) and the rest is padding. It may
    also be a list of per-instance lists of different lengths, which is padded here. Default:
    all 5**action_seq_len sequences for every instance. `action_mask` (num_envs, max_actions)
    says which actions exist; stepping one that does not raises.

    Autoreset is SAME_STEP: when an instance terminates or truncates, the observation returned
    is already the start cell of its next episode. `info["final_obs"]` (num_envs,) holds the
    observation each instance reached before any reset (for instances that did not finish it
    equals the returned one) and `info["_final_obs"]` says which ones finished; `final_info` is
    empty since the single-instance info is.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        goals: np.ndarray | Sequence[int] | None = None,
        actions: np.ndarray | Sequence[Sequence[int]] | None = None,
        num_actions: np.ndarray | Sequence[int] | int | None = None,
        size: int = 9,
        action_seq_len: int = 3,
        max_episode_steps: int = 20,
        goal_seed: int = 0,
    ) -> None:
        _check_common(size, action_seq_len, max_episode_steps)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        num_sequences = NUM_MOVES**action_seq_len
        goals = random_goals(num_envs, size, goal_seed) if goals is None else np.asarray(goals, dtype=np.int64)
        if goals.shape != (num_envs,):
            raise ValueError(f"goals must have shape {(num_envs,)}, got {goals.shape}")
        _check_goals(goals, size)
        table, num_actions = self._action_table(num_envs, actions, num_actions, num_sequences)

        self.num_envs = num_envs
        self.size = size
        self.action_seq_len = action_seq_len
        self.max_episode_steps = max_episode_steps
        self.start = centre_cell(size)
        self.goals = goals
        self.num_actions = num_actions
        self.action_mask = np.arange(table.shape[1])[None, :] < num_actions[:, None]
        _check_action_rows(table, self.action_mask, num_sequences)
        # Padding points at sequence 0; the mask keeps it from ever being taken.
        self.actions = np.where(self.action_mask, table, 0)
        next_cell, reaches_goal = _transition_tables(size, action_seq_len, goals, self.actions)
        self.next_cell, self.reaches_goal = np.ascontiguousarray(next_cell), np.ascontiguousarray(reaches_goal)
        # step() looks transitions up by one flat index: faster than (rows, cells, actions) indexing.
        self._cell_offset = np.arange(num_envs) * size * size

        self.single_observation_space = spaces.Discrete(size * size)
        self.single_action_space = spaces.Discrete(table.shape[1])
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._cells = np.full(num_envs, self.start, dtype=np.int64)
        self._steps = np.zeros(num_envs, dtype=np.int64)

    @staticmethod
    def _action_table(
        num_envs: int,
        actions: np.ndarray | Sequence[Sequence[int]] | None,
        num_actions: np.ndarray | Sequence[int] | int | None,
        num_sequences: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The padded (num_envs, max_actions) table and the per-instance counts."""
        if actions is None:
            table = np.broadcast_to(np.arange(num_sequences), (num_envs, num_sequences))
        elif isinstance(actions, np.ndarray):
            table = actions.astype(np.int64)
        else:
            rows = [np.asarray(row, dtype=np.int64).ravel() for row in actions]
            lengths = [row.size for row in rows]
            table = np.full((len(rows), max(lengths, default=0)), -1, dtype=np.int64)
            for i, row in enumerate(rows):
                table[i, : row.size] = row
            if num_actions is None:
                num_actions = lengths
        if table.ndim != 2 or table.shape[0] != num_envs:
            raise ValueError(f"actions must have shape (num_envs={num_envs}, max_actions), got {table.shape}")
        if num_actions is None:
            num_actions = table.shape[1]
        num_actions = np.broadcast_to(np.asarray(num_actions, dtype=np.int64), (num_envs,)).copy()
        if np.any(num_actions < 1):
            bad = int(np.flatnonzero(num_actions < 1)[0])
            raise ValueError(f"the action list of instance {bad} is empty: an instance needs at least one action")
        if np.any(num_actions > table.shape[1]):
            raise ValueError(f"num_actions {num_actions.max()} exceeds the {table.shape[1]} columns of actions")
        return table, num_actions

    @cached_property
    def min_steps(self) -> np.ndarray:
        """Fewest actions that reach the goal from the start per instance (-1 where none does).

        Computed on first use: it costs a few passes over the (N, C, K) tables.
        """
        return _min_steps(self.next_cell, self.reaches_goal, self.action_mask, self.start)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):
            raise ValueError("a vectorised Darkroom takes one integer seed for all instances")
        super().reset(seed=seed)
        self._cells[:] = self.start
        self._steps[:] = 0
        return self._cells.copy(), {"action_mask": self.action_mask}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} actions, got shape {actions.shape}")
        rows = np.arange(self.num_envs)
        max_actions = self.action_mask.shape[1]
        in_range = (actions >= 0) & (actions < max_actions)
        valid = in_range & self.action_mask[rows, np.clip(actions, 0, max_actions - 1)]
        if not valid.all():
            bad = int(np.flatnonzero(~valid)[0])
            raise ValueError(
                f"instance {bad} has {self.num_actions[bad]} actions; action {actions[bad]} does not exist"
            )
        transition = (self._cell_offset + self._cells) * max_actions + actions
        final_obs = self.next_cell.reshape(-1).take(transition).astype(np.int64)
        terminated = self.reaches_goal.reshape(-1).take(transition)
        rewards = terminated.astype(np.float32)
        self._steps += 1
        truncated = self._steps >= self.max_episode_steps
        done = terminated | truncated
        # SAME_STEP autoreset: finished instances start their next episode right away.
        self._cells = np.where(done, self.start, final_obs)
        self._steps[done] = 0
        info = {"final_obs": final_obs, "_final_obs": done, "final_info": {}, "_final_info": done}
        return self._cells.copy(), rewards, terminated, truncated, info
