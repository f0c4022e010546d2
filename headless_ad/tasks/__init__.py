"""Environment families. Each is a small `Task`; the collector, trainer and evaluator are shared.

`get_task` resolves a task by name: one of this package's (`TASKS`), one registered from Python
(`register_task`), one a distribution declares in the `headless_ad.tasks` entry-point group, or a
plug-in spec `package.module:Attribute` naming a `Task` class (built with no arguments) or instance.
Checkpoints and history stores keep the name or spec they were made with, so `evaluate` finds a
plug-in task again the same way.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from headless_ad.tasks.bandit import BanditTask
from headless_ad.tasks.base import OPTIONAL_HOOKS, Suite, Task, missing_members
from headless_ad.tasks.contextual_bandit import ContextualBanditTask
from headless_ad.tasks.darkroom import DarkroomTask
from headless_ad.tasks.minigrid import WORLDS, MiniGridTask

ENTRY_POINT_GROUP = "headless_ad.tasks"

TASKS: dict[str, Task] = {
    "bandit": BanditTask(),
    "contextual_bandit": ContextualBanditTask(),
    "darkroom": DarkroomTask(),
    **{name: MiniGridTask(name, env_id) for name, env_id in WORLDS.items()},
}
_PLUGINS: dict[str, Task] = {}
"""Tasks resolved from specs and entry points, so each is imported and built once."""


def register_task(task: Task, name: str | None = None) -> Task:
    """Make `task` known by `name` (default: its `name`) to `get_task`, and so to the CLI run in
    this process; checked against the protocol first."""
    name = name or getattr(task, "name", None)
    if not name:
        raise ValueError("register_task needs a name (the task has no `name`)")
    TASKS[name] = checked(task, repr(name))
    return TASKS[name]


def checked(candidate: Any, spec: str) -> Task:
    """`candidate` (a Task class, built with no arguments, or instance) once it satisfies the protocol."""
    if isinstance(candidate, type):
        try:
            candidate = candidate()
        except Exception as error:
            raise ValueError(
                f"task {spec}: building {candidate.__name__}() failed ({type(error).__name__}: {error})"
            ) from None
    missing = missing_members(candidate)
    if missing:
        hint = (
            " (subclass headless_ad.Task to inherit the optional hooks)" if set(missing) <= set(OPTIONAL_HOOKS) else ""
        )
        what = f"task {spec}: {type(candidate).__name__} does not satisfy the Task protocol"
        raise ValueError(f"{what}: missing {', '.join(missing)}{hint}")
    if not callable(candidate.observation_size):
        raise ValueError(f"task {spec}: observation_size must be a method observation_size(suite) -> int")
    if candidate.observation_kind not in ("none", "discrete", "continuous"):
        raise ValueError(f"task {spec}: observation_kind must be none, discrete or continuous")
    return candidate


def load_spec(spec: str) -> Task:
    """The task a `package.module:Attribute` spec names."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"task {spec!r}: a plug-in task is given as package.module:Attribute")
    try:
        module = importlib.import_module(module_name)
    except ValueError:  # the module's own one-line complaint (e.g. a GymTask's env is unsuitable)
        raise
    except Exception as error:
        raise ValueError(f"task {spec!r}: cannot import {module_name!r} ({type(error).__name__}: {error})") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"task {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    return checked(target, repr(spec))


def entry_point_tasks() -> dict[str, Any]:
    """Tasks that installed distributions declare in the `headless_ad.tasks` entry-point group."""
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def get_task(name: str) -> Task:
    """The task `name` (see the module docstring for where names come from)."""
    if name in TASKS:
        return TASKS[name]
    if name in _PLUGINS:
        return _PLUGINS[name]
    if ":" in name:
        _PLUGINS[name] = load_spec(name)
        return _PLUGINS[name]
    declared = entry_point_tasks()
    if name in declared:
        try:
            target = declared[name].load()
        except Exception as error:
            raise ValueError(
                f"task {name!r}: entry point {declared[name].value!r} does not load ({type(error).__name__}: {error})"
            ) from None
        _PLUGINS[name] = checked(target, repr(name))
        return _PLUGINS[name]
    known = sorted({*TASKS, *declared})
    raise ValueError(
        f"unknown task {name!r}; known tasks: {', '.join(known)} (or package.module:Task for a task of your own)"
    )


__all__ = ["ENTRY_POINT_GROUP", "TASKS", "Suite", "Task", "get_task", "register_task"]
