"""Animated GIFs of a model's in-context episodes, for tasks that can draw their instances.

A task that can draw (`Task.can_render`) offers `render_episodes(suite, rollout, instance,
episodes) -> list of (H, W, 3) uint8 frames`; `evaluate --gifs N` then writes, for the first N instances of every
suite, one GIF of the model's first and last episodes there (so one sees it learn).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
from PIL import Image

from headless_ad.files import atomic_output
from headless_ad.rollout import Rollout

if TYPE_CHECKING:  # tasks import this module for episode_bounds
    from headless_ad.tasks.base import Suite, Task

EARLY_LATE = 2
"""Episodes rendered from each end of an instance's history."""
FRAME_MS = 250


def episode_bounds(dones: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) steps of every completed episode of one history."""
    ends = np.flatnonzero(dones) + 1
    return list(zip(np.concatenate([[0], ends[:-1]]).tolist(), ends.tolist(), strict=True))


def early_and_late(num_episodes: int, count: int = EARLY_LATE) -> list[int]:
    """The first and last `count` episode indices (all of them when there are few)."""
    return sorted(set(range(min(count, num_episodes))) | set(range(max(0, num_episodes - count), num_episodes)))


def replay_frames(env: gym.Env, rollout: Rollout, instance: int, episodes: list[int]) -> list[np.ndarray]:
    """`env` (one instance, `render_mode="rgb_array"`) replays `episodes` of the rollout's
    `instance`: the start of each, then a frame after every action. The env must end each episode
    where the rollout did; if it does not, the pictures would show another history, so it stops."""
    bounds = episode_bounds(rollout.dones[instance])
    frames = []
    for episode in episodes:
        start, stop = bounds[episode]
        env.reset()
        frames.append(env.render())
        for step in range(start, stop):
            _, _, terminated, truncated, _ = env.step(int(rollout.actions[instance, step]))
            frames.append(env.render())
            if (terminated or truncated) != (step == stop - 1):
                raise RuntimeError(f"instance {instance}: the env and the rollout disagree at step {step}")
    return frames


def early_and_late_frames(task: Task, suite: Suite, rollout: Rollout, instance: int) -> list[np.ndarray]:
    """The task's pictures of one instance's first and last episodes (so one sees it learn)."""
    return task.render_episodes(suite, rollout, instance, early_and_late(len(episode_bounds(rollout.dones[instance]))))


def write_gif(frames: Sequence[np.ndarray], path: Path | str, frame_ms: int = FRAME_MS) -> Path:
    """An animated, looping GIF of `frames` (H, W, 3) uint8, written atomically. Pillow merges a
    frame identical to the one before it into that one (their times add up), so the GIF lasts
    len(frames) * frame_ms whatever it decodes to."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    images = [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return path


def write_suite_gifs(
    task: Task, suite_name: str, suite: Suite, rollout: Rollout, instances: int, out: Path
) -> list[Path]:
    """GIFs of the early and late episodes of the first `instances` instances of one suite."""
    paths = []
    for instance in range(min(instances, rollout.actions.shape[0])):
        frames = early_and_late_frames(task, suite, rollout, instance)
        name = f"{suite_name.replace('/', '_')}-instance{instance}.gif"
        paths.append(write_gif(frames, out / name))
    return paths
