"""MiniGrid worlds with macro-actions, whose set of actions varies per instance.

An instance is one fixed layout of a real minigrid environment (DoorKey-5x5, Empty, LavaGap,
Unlock, ...), drawn by resetting it with `layout_seed` (minigrid draws a new layout on every
unseeded reset; a learning history needs the same layout throughout), and its own ordered list
of macro-actions. A macro-action is a sequence of 3 primitives over {left, right, forward,
pickup, toggle}, so there are 5**3 = 125; instance action k is sequence `actions[k]` of
`macro_sequences()`. Taking one runs its primitives in the real env until the episode ends
(the goal, lava, or the door opened in Unlock). An episode lasts at most `max_episode_steps`
macro-actions: minigrid's `max_steps` is set to 3x that, so its own truncation ends the last
one. The reward is minigrid's own, 1 - 0.9 * primitive steps / max_steps on success.

Observations are canonical state codes: the agent's interior cell (x, y), its direction, the
carried object (none or the key) and the door's state (locked, closed, open); the last two only
in worlds with a key or a door. With no drop primitive the key is either where the layout put it
or carried, so the code determines the whole world state.

`MiniGridMacro` steps the real minigrid env (without generating its egocentric view, which
nothing here reads and which is most of a minigrid step). `MiniGridMacroVectorEnv` is its table
twin: each layout's reachable states are explored once with the real env under every primitive,
the 125 macro-actions are composed from those transitions, and many instances then step by
numpy look-ups. tests/test_minigrid.py holds the two equal step for step.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, ClassVar

import gymnasium as gym
import minigrid
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator
from minigrid.core.world_object import Door, Key
from minigrid.minigrid_env import MiniGridEnv

PRIMITIVES = ("left", "right", "forward", "pickup", "toggle")
SEQ_LEN = 3
NUM_SEQUENCES = len(PRIMITIVES) ** SEQ_LEN
MINIGRID_VERSION = minigrid.__version__
SUPPORTED_OBJECTS = {"wall", "goal", "lava", "door", "key"}
DOOR_STATES = ("locked", "closed", "open")
LAYOUT_SEEDS_SCANNED = 2_000
"""Layout seeds 0..1999 are drawn to enumerate a world's distinct layouts (DoorKey-5x5 has 48)."""


def macro_sequences() -> np.ndarray:
    """All 125 primitive sequences, shape (125, 3), indices into PRIMITIVES, `itertools.product` order."""
    return np.array(list(itertools.product(range(len(PRIMITIVES)), repeat=SEQ_LEN)), dtype=np.int64)


def _primitive_actions(env: MiniGridEnv) -> list[int]:
    return [int(getattr(env.actions, name)) for name in PRIMITIVES]


def _skip_observation() -> None:
    """Stands in for `gen_obs`: nothing here reads the egocentric view, most of a minigrid step."""
    return None


def make_minigrid(env_id: str, max_steps: int, render_mode: str | None = None) -> MiniGridEnv:
    """The bare minigrid env (no wrappers) with `max_steps` primitive steps and no view rendering."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        raise ValueError(f"unknown minigrid environment id {env_id!r} (e.g. MiniGrid-DoorKey-5x5-v0)") from None
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    if not (isinstance(creator, type) and issubclass(creator, MiniGridEnv)):
        raise ValueError(f"{env_id!r} is not a minigrid environment")
    env = creator(**{**spec.kwargs, "max_steps": max_steps, "render_mode": render_mode})
    env.gen_obs = _skip_observation  # an instance attribute shadows the method
    return env


@dataclass(frozen=True)
class World:
    """What a state code needs to know about a minigrid environment: its size and objects."""

    env_id: str
    width: int
    height: int
    has_key: bool
    has_door: bool

    @property
    def num_codes(self) -> int:
        return (self.width - 2) * (self.height - 2) * 4 * (2 if self.has_key else 1) * (3 if self.has_door else 1)

    def code(self, x: int, y: int, direction: int, carried: int, door_state: int) -> int:
        """The canonical state code of an agent at interior cell (x, y)."""
        inner = (self.width - 2) * (self.height - 2)
        cell = (y - 1) * (self.width - 2) + (x - 1)
        return cell + inner * (direction + 4 * (carried + (2 if self.has_key else 1) * door_state))

    def decode(self, code: int) -> tuple[int, int, int, int, int]:
        """(x, y, direction, carried, door state) of a code."""
        inner = (self.width - 2) * (self.height - 2)
        cell, rest = code % inner, code // inner
        direction, rest = rest % 4, rest // 4
        carried, door_state = rest % (2 if self.has_key else 1), rest // (2 if self.has_key else 1)
        return cell % (self.width - 2) + 1, cell // (self.width - 2) + 1, direction, carried, door_state


def _objects(env: MiniGridEnv) -> tuple[Door | None, Key | None]:
    """The layout's door and key (at most one of each), after checking the world has nothing else."""
    doors, keys = [], []
    for obj in env.grid.grid:
        if obj is None:
            continue
        if obj.type not in SUPPORTED_OBJECTS:
            raise ValueError(
                f"{env.spec.id if env.spec else type(env).__name__} has a {obj.type}: only worlds of "
                f"{', '.join(sorted(SUPPORTED_OBJECTS))} have state codes here"
            )
        (doors if obj.type == "door" else keys if obj.type == "key" else []).append(obj)
    if len(doors) > 1 or len(keys) > 1:
        raise ValueError("only worlds with at most one door and one key have state codes here")
    return (doors[0] if doors else None), (keys[0] if keys else None)


def _door_state(door: Door | None) -> int:
    if door is None:
        return 0
    return 0 if door.is_locked else 2 if door.is_open else 1


@cache
def world(env_id: str) -> World:
    """The world of a minigrid id (checked supported); raises one line for unknown ids."""
    env = make_minigrid(env_id, max_steps=3)
    env.reset(seed=0)
    door, key = _objects(env)
    return World(env_id, env.width, env.height, key is not None, door is not None)


def _layout_key(env: MiniGridEnv) -> bytes:
    """What makes two layouts play differently: objects and their states, not their colours."""
    return env.grid.encode()[:, :, ::2].tobytes() + bytes([*(int(v) for v in env.agent_pos), int(env.agent_dir)])


@cache
def distinct_layouts(env_id: str) -> np.ndarray:
    """The first seed of each distinct layout among seeds 0..LAYOUT_SEEDS_SCANNED-1, sorted.

    Several seeds give the same layout (DoorKey-5x5 has 48 layouts), so splitting layouts (not
    seeds) into training and held-out sets keeps held-out layouts unseen. Layouts that differ
    only in colours (Unlock's door and key) count as one.
    """
    env = make_minigrid(env_id, max_steps=3)
    first: dict[bytes, int] = {}
    for seed in range(LAYOUT_SEEDS_SCANNED):
        env.reset(seed=seed)
        first.setdefault(_layout_key(env), seed)
    return np.array(sorted(first.values()), dtype=np.int64)


@dataclass(frozen=True)
class PrimitiveTable:
    """One layout's transitions under each primitive, over all state codes (unreached codes stay put)."""

    start: int
    next_code: np.ndarray  # (S, 5)
    terminated: np.ndarray  # (S, 5)
    success: np.ndarray  # (S, 5) the primitive ended the episode with a reward


def _set_state(env: MiniGridEnv, state: tuple[int, int, int, int, int], door, key, key_pos) -> None:
    x, y, direction, carried, door_state = state
    env.agent_pos = (x, y)
    env.agent_dir = direction
    if key is not None:
        env.carrying = key if carried else None
        env.grid.set(*key_pos, None if carried else key)
    if door is not None:
        door.is_locked, door.is_open = door_state == 0, door_state == 2
    env.step_count = 0


@cache
def primitive_table(env_id: str, layout_seed: int) -> PrimitiveTable:
    """Explore one layout's reachable states with the real env: every primitive from every state."""
    space = world(env_id)
    env = make_minigrid(env_id, max_steps=10**9)
    env.reset(seed=layout_seed)
    door, key = _objects(env)
    key_pos = None if key is None else tuple(int(v) for v in key.init_pos)
    primitives = _primitive_actions(env)

    def current() -> tuple[int, int, int, int, int]:
        x, y = (int(v) for v in env.agent_pos)
        return x, y, int(env.agent_dir), int(env.carrying is not None), _door_state(door)

    codes = np.arange(space.num_codes)
    next_code = np.repeat(codes[:, None], len(PRIMITIVES), axis=1)
    terminated = np.zeros((space.num_codes, len(PRIMITIVES)), dtype=bool)
    success = np.zeros_like(terminated)
    start_state = current()
    start = space.code(*start_state)
    seen, frontier = {start}, [start_state]
    while frontier:
        state = frontier.pop()
        code = space.code(*state)
        for p, primitive in enumerate(primitives):
            _set_state(env, state, door, key, key_pos)
            _, reward, term, _, _ = env.step(primitive)
            reached = current()
            next_code[code, p] = space.code(*reached)
            terminated[code, p], success[code, p] = term, reward > 0
            if not term and next_code[code, p] not in seen:
                seen.add(int(next_code[code, p]))
                frontier.append(reached)
    return PrimitiveTable(start, next_code, terminated, success)


@dataclass(frozen=True)
class MacroTable:
    """Per layout, code and macro-action (L, S, 125): the code reached, the primitives run (1-3,
    fewer when the episode ended on the way), and whether it terminated / succeeded."""

    start: np.ndarray  # (L,)
    next_code: np.ndarray
    primitives_run: np.ndarray
    terminated: np.ndarray
    success: np.ndarray


def _compose(table: PrimitiveTable) -> tuple[np.ndarray, ...]:
    """(next code, primitives run, terminated, success), each (S, 125), of every macro from every
    code of one layout, following its primitive transitions one primitive at a time."""
    sequences = macro_sequences()
    num_codes, num_primitives = table.next_code.shape
    next_code, ends, succeeds = (a.reshape(-1) for a in (table.next_code, table.terminated, table.success))
    code = np.repeat(np.arange(num_codes)[:, None], NUM_SEQUENCES, axis=1)
    running = np.ones(code.shape, dtype=bool)
    run = np.zeros(code.shape, dtype=np.int8)
    terminated = np.zeros_like(running)
    success = np.zeros_like(running)
    for step in range(SEQ_LEN):
        transition = code * num_primitives + sequences[None, :, step]  # flat look-ups: faster than [code, p]
        run += running
        terminated |= running & ends.take(transition)
        success |= running & succeeds.take(transition)
        code = np.where(running, next_code.take(transition), code)
        running &= ~terminated
    return code, run, terminated, success


def macro_table(env_id: str, layout_seeds: Sequence[int] | np.ndarray) -> MacroTable:
    """The macro-action tables of several layouts, stacked in the given order. Composed anew from
    the cached primitive tables (a few ms a layout), so only the stack is held."""
    tables = [primitive_table(env_id, int(seed)) for seed in layout_seeds]
    code_dtype = np.min_scalar_type(world(env_id).num_codes - 1)
    shape = (len(tables), world(env_id).num_codes, NUM_SEQUENCES)
    stacked = MacroTable(
        start=np.array([table.start for table in tables], dtype=np.int64),
        next_code=np.empty(shape, dtype=code_dtype),
        primitives_run=np.empty(shape, dtype=np.int8),
        terminated=np.empty(shape, dtype=bool),
        success=np.empty(shape, dtype=bool),
    )
    for i, table in enumerate(tables):
        (
            stacked.next_code[i],
            stacked.primitives_run[i],
            stacked.terminated[i],
            stacked.success[i],
        ) = _compose(table)
    return stacked


def shortest_path(table: MacroTable, layout: int, actions: np.ndarray) -> list[int] | None:
    """Fewest action indices (into `actions`) from the start to success in layout `layout`, or
    None when these actions cannot reach it."""
    sequences = np.asarray(actions)
    previous: dict[int, tuple[int, int]] = {}
    start = int(table.start[layout])
    frontier, seen = [start], {start}
    while frontier:
        following = []
        for code in frontier:
            for k, sequence in enumerate(sequences):
                if table.success[layout, code, sequence]:
                    path = [k]
                    while code != start:
                        code, step = previous[code]
                        path.append(step)
                    return path[::-1]
                nxt = int(table.next_code[layout, code, sequence])
                if not table.terminated[layout, code, sequence] and nxt not in seen:
                    seen.add(nxt)
                    previous[nxt] = (code, k)
                    following.append(nxt)
        frontier = following
    return None


def check_actions(actions: np.ndarray, mask: np.ndarray) -> None:
    """Available entries must be macro indices in [0, 125), each listed at most once per instance."""
    outside = mask & ((actions < 0) | (actions >= NUM_SEQUENCES))
    if np.any(outside):
        row, col = np.argwhere(outside)[0]
        raise ValueError(f"action index {actions[row, col]} of instance {row} is outside [0, {NUM_SEQUENCES})")
    keyed = np.sort(np.where(mask, actions, -1 - np.arange(actions.shape[1])), axis=1)
    repeated = keyed[:, 1:] == keyed[:, :-1]
    if np.any(repeated):
        row, col = np.argwhere(repeated)[0]
        raise ValueError(f"instance {row} lists action index {keyed[row, col]} more than once")


def _check_episode_steps(max_episode_steps: int) -> None:
    if max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")


class MiniGridMacro(gym.Env[np.int64, np.int64]):
    """One layout of a real minigrid env with its own list of macro-actions (default: all 125)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        env_id: str = "MiniGrid-DoorKey-5x5-v0",
        layout_seed: int = 0,
        actions: Sequence[int] | np.ndarray | None = None,
        max_episode_steps: int = 20,
        render_mode: str | None = None,
    ) -> None:
        _check_episode_steps(max_episode_steps)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        actions = np.arange(NUM_SEQUENCES) if actions is None else np.asarray(actions, dtype=np.int64)
        if actions.ndim != 1 or actions.size == 0:
            raise ValueError(f"actions must be a non-empty 1-D list of macro indices, got shape {actions.shape}")
        check_actions(actions[None, :], np.ones((1, actions.size), dtype=bool))
        self.world = world(env_id)
        self.env_id = env_id
        self.layout_seed = int(layout_seed)
        self.actions = actions
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.minigrid = make_minigrid(env_id, max_steps=SEQ_LEN * max_episode_steps, render_mode=render_mode)
        self._primitives = np.array(_primitive_actions(self.minigrid))[macro_sequences()[actions]]  # (K, 3)
        self.observation_space = spaces.Discrete(self.world.num_codes)
        self.action_space = spaces.Discrete(actions.size)
        self._door: Door | None = None

    @cached_property
    def min_steps(self) -> int:
        """Fewest actions from the start to success (-1 when this action list cannot succeed)."""
        path = shortest_path(macro_table(self.env_id, [self.layout_seed]), 0, self.actions)
        return -1 if path is None else len(path)

    def _code(self) -> np.int64:
        x, y = (int(v) for v in self.minigrid.agent_pos)
        carried = int(self.minigrid.carrying is not None)
        return np.int64(self.world.code(x, y, int(self.minigrid.agent_dir), carried, _door_state(self._door)))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self.minigrid.reset(seed=self.layout_seed)  # the same layout every episode
        self._door, _ = _objects(self.minigrid)
        return self._code(), {}

    def step(self, action: int) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not one of the {self.action_space.n} actions")
        reward, terminated, truncated = 0.0, False, False
        for primitive in self._primitives[int(action)]:
            _, step_reward, terminated, truncated, _ = self.minigrid.step(int(primitive))
            reward += float(step_reward)
            if terminated or truncated:
                break
        return self._code(), reward, bool(terminated), bool(truncated), {}

    def render(self) -> np.ndarray | None:
        return self.minigrid.render() if self.render_mode == "rgb_array" else None


class MiniGridMacroVectorEnv(gym.vector.VectorEnv):
    """`num_envs` minigrid instances stepped together by table look-ups (the table twin).

    `layout_seeds` (num_envs,) picks each instance's layout (default: the first `num_envs`
    distinct layouts, cycled). `actions` (num_envs, max_actions) holds macro indices; instance i
    offers the first `num_actions[i]` of its row (default: the whole row). Default: all 125.
    Autoreset is SAME_STEP, as in `DarkroomVectorEnv`: `info["final_obs"]` holds the code reached
    before any reset.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        env_id: str = "MiniGrid-DoorKey-5x5-v0",
        layout_seeds: np.ndarray | Sequence[int] | None = None,
        actions: np.ndarray | Sequence[Sequence[int]] | None = None,
        num_actions: np.ndarray | Sequence[int] | int | None = None,
        max_episode_steps: int = 20,
    ) -> None:
        _check_episode_steps(max_episode_steps)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.world = world(env_id)
        if layout_seeds is None:
            known = distinct_layouts(env_id)
            layout_seeds = known[np.arange(num_envs) % known.size]
        layout_seeds = np.asarray(layout_seeds, dtype=np.int64)
        if layout_seeds.shape != (num_envs,):
            raise ValueError(f"layout_seeds must have shape {(num_envs,)}, got {layout_seeds.shape}")
        if actions is None:
            actions = np.broadcast_to(np.arange(NUM_SEQUENCES), (num_envs, NUM_SEQUENCES))
        table = np.asarray(actions, dtype=np.int64)
        if table.ndim != 2 or table.shape[0] != num_envs:
            raise ValueError(f"actions must have shape (num_envs={num_envs}, max_actions), got {table.shape}")
        num_actions = table.shape[1] if num_actions is None else num_actions
        num_actions = np.broadcast_to(np.asarray(num_actions, dtype=np.int64), (num_envs,)).copy()
        if np.any(num_actions < 1) or np.any(num_actions > table.shape[1]):
            raise ValueError(f"num_actions must be in [1, {table.shape[1]}] for every instance")
        self.action_mask = np.arange(table.shape[1])[None, :] < num_actions[:, None]
        check_actions(table, self.action_mask)

        self.num_envs = num_envs
        self.env_id = env_id
        self.max_episode_steps = max_episode_steps
        self.max_primitive_steps = SEQ_LEN * max_episode_steps
        self.layout_seeds = layout_seeds
        self.num_actions = num_actions
        self.actions = np.where(self.action_mask, table, 0)  # padding is never taken
        unique, layout_index = np.unique(layout_seeds, return_inverse=True)
        self.tables = macro_table(env_id, unique)
        self.layout_index = layout_index
        self.start = self.tables.start[layout_index]
        num_codes = self.world.num_codes
        # One flat index per transition: (layout * S + code) * 125 + sequence.
        self._layout_offset = layout_index * num_codes
        tables = self.tables
        self._flat = [
            np.ascontiguousarray(array).reshape(-1)
            for array in (tables.next_code, tables.primitives_run, tables.terminated, tables.success)
        ]
        self.single_observation_space = spaces.Discrete(num_codes)
        self.single_action_space = spaces.Discrete(table.shape[1])
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._codes = self.start.copy()
        self._steps = np.zeros(num_envs, dtype=np.int64)

    def shortest_path(self, instance: int) -> list[int] | None:
        """Fewest actions from instance `instance`'s start to success, or None if it cannot succeed."""
        offered = self.actions[instance, : self.num_actions[instance]]
        return shortest_path(self.tables, int(self.layout_index[instance]), offered)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):
            raise ValueError("a vectorised MiniGrid takes one integer seed for all instances")
        super().reset(seed=seed)
        self._codes = self.start.copy()
        self._steps[:] = 0
        return self._codes.copy(), {"action_mask": self.action_mask}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} actions, got shape {actions.shape}")
        max_actions = self.action_mask.shape[1]
        rows = np.arange(self.num_envs)
        valid = (actions >= 0) & (actions < max_actions)
        valid &= self.action_mask[rows, np.clip(actions, 0, max_actions - 1)]
        if not valid.all():
            bad = int(np.flatnonzero(~valid)[0])
            raise ValueError(
                f"instance {bad} has {self.num_actions[bad]} actions; action {actions[bad]} does not exist"
            )
        sequence = self.actions.reshape(-1).take(rows * max_actions + actions)
        transition = (self._layout_offset + self._codes) * NUM_SEQUENCES + sequence
        next_code, run, terminated, success = (array.take(transition) for array in self._flat)
        final_obs = next_code.astype(np.int64)
        primitive_steps = self._steps * SEQ_LEN + run
        # minigrid's own reward and truncation, on its primitive step count.
        rewards = np.where(success, 1 - 0.9 * (primitive_steps / self.max_primitive_steps), 0.0)
        truncated = primitive_steps >= self.max_primitive_steps
        self._steps += 1
        done = terminated | truncated
        self._codes = np.where(done, self.start, final_obs)
        self._steps[done] = 0
        info = {"final_obs": final_obs, "_final_obs": done, "final_info": {}, "_final_info": done}
        return self._codes.copy(), rewards, terminated, truncated, info
