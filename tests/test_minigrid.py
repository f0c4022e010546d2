"""MiniGrid with macro-actions: the table twin against the real minigrid env, the gymnasium checks, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.minigrid import (
    NUM_SEQUENCES,
    MiniGridMacro,
    MiniGridMacroVectorEnv,
    distinct_layouts,
    macro_sequences,
    world,
)


def _side_by_side(env_id: str, layouts: np.ndarray, actions: np.ndarray, plans: list[list[int]], steps: int) -> int:
    """Step real envs and the twin together; each instance follows its plan, then random actions.
    Returns how many episodes succeeded (so a caller can check the goal was reached at all)."""
    rng = np.random.default_rng(0)
    twin = MiniGridMacroVectorEnv(len(layouts), env_id=env_id, layout_seeds=layouts, actions=actions)
    real = [MiniGridMacro(env_id, int(seed), actions=row) for seed, row in zip(layouts, actions, strict=True)]
    codes, _ = twin.reset(seed=0)
    assert list(codes) == [env.reset(seed=0)[0] for env in real]
    position = [0] * len(real)  # where each instance stands in its plan, restarted every episode
    successes = 0
    for _ in range(steps):
        chosen = np.array(
            [
                plan[pos] if pos < len(plan) else rng.integers(actions.shape[1])
                for plan, pos in zip(plans, position, strict=True)
            ]
        )
        codes, rewards, terminated, truncated, info = twin.step(chosen)
        for i, env in enumerate(real):
            code, reward, term, trunc, _ = env.step(int(chosen[i]))
            assert (info["final_obs"][i], rewards[i], terminated[i], truncated[i]) == (code, reward, term, trunc)
            position[i] += 1
            if term or trunc:
                successes += reward > 0
                position[i] = 0
                assert env.reset()[0] == codes[i]
    return successes


@pytest.mark.parametrize(
    ("env_id", "num_layouts"),
    [("MiniGrid-DoorKey-5x5-v0", 6), ("MiniGrid-LavaGapS7-v0", 4), ("MiniGrid-Unlock-v0", 3)],
)
def test_twin_equals_real_minigrid_on_random_and_shortest_paths(env_id: str, num_layouts: int) -> None:
    layouts = distinct_layouts(env_id)[:num_layouts]
    rng = np.random.default_rng(1)
    actions = np.stack([rng.permutation(NUM_SEQUENCES)[:50] for _ in layouts])
    random_plans = [[] for _ in layouts]
    assert _side_by_side(env_id, layouts, actions, random_plans, 60) >= 0
    twin = MiniGridMacroVectorEnv(len(layouts), env_id=env_id, layout_seeds=layouts, actions=actions)
    paths = [twin.shortest_path(i) for i in range(len(layouts))]
    assert all(path is not None for path in paths)
    # Shortest paths then random suffixes: every episode restarts the path, so the goal is reached often.
    assert _side_by_side(env_id, layouts, actions, paths, 70) >= len(layouts) * 2


def test_truncation_after_twenty_macro_actions_and_reward_formula() -> None:
    # All-left turns in place forever: truncated at the 20th action (60 primitive steps).
    env = MiniGridMacroVectorEnv(2, max_episode_steps=20)
    env.reset(seed=0)
    for step in range(1, 21):
        _, rewards, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.int64))
        assert not terminated.any() and (rewards == 0).all()
        assert truncated.all() == (step == 20)
    twin = MiniGridMacroVectorEnv(1)
    path = twin.shortest_path(0)
    code, _ = twin.reset(seed=0)
    for action in path:
        before = int(code[0])
        code, reward, terminated, _, _ = twin.step(np.array([action]))
    # minigrid's reward counts primitive steps: 3 per macro-action, fewer in the one reaching the goal.
    run = int(twin.tables.primitives_run[0, before, twin.actions[0, path[-1]]])
    assert terminated[0] and reward[0] == 1 - 0.9 * ((3 * (len(path) - 1) + run) / 60)


def test_registered_id_passes_check_env_and_renders() -> None:
    env = gym.make("MiniGridMacro-v0", render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=True)
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    vector = gym.make_vec("MiniGridMacro-v0", num_envs=3, vectorization_mode="vector_entry_point")
    codes, _ = vector.reset(seed=0)
    assert codes.shape == (3,) and vector.single_observation_space.n == world("MiniGrid-DoorKey-5x5-v0").num_codes


def test_layouts_are_distinct_and_the_state_code_round_trips() -> None:
    assert distinct_layouts("MiniGrid-DoorKey-5x5-v0").size == 48  # door row x agent x key cells x direction
    assert distinct_layouts("MiniGrid-Empty-6x6-v0").size == 1
    space = world("MiniGrid-DoorKey-5x5-v0")
    for code in range(space.num_codes):
        assert space.code(*space.decode(code)) == code
    assert macro_sequences().shape == (125, 3)


def test_bad_input_gets_one_clear_line() -> None:
    with pytest.raises(ValueError, match="unknown minigrid environment id 'MiniGrid-Nope-v0'"):
        MiniGridMacro("MiniGrid-Nope-v0")
    with pytest.raises(ValueError, match="is not a minigrid environment"):
        MiniGridMacro("CartPole-v1")
    with pytest.raises(ValueError, match="has a ball"):
        MiniGridMacro("MiniGrid-KeyCorridorS3R1-v0")
    with pytest.raises(ValueError, match=r"action index 125 of instance 0 is outside \[0, 125\)"):
        MiniGridMacro(actions=[0, 125])
    with pytest.raises(ValueError, match="instance 1 lists action index 7 more than once"):
        MiniGridMacroVectorEnv(2, actions=[[1, 2], [7, 7]])
    # Turning only never reaches the goal.
    assert MiniGridMacro(actions=[0, 31]).min_steps == -1
