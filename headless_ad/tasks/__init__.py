"""Environment families. Each is a small `Task`; the collector, trainer and evaluator are shared."""

from __future__ import annotations

from headless_ad.tasks.bandit import BanditTask
from headless_ad.tasks.base import Suite, Task
from headless_ad.tasks.contextual_bandit import ContextualBanditTask
from headless_ad.tasks.darkroom import DarkroomTask

TASKS: dict[str, Task] = {
    "bandit": BanditTask(),
    "contextual_bandit": ContextualBanditTask(),
    "darkroom": DarkroomTask(),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


__all__ = ["TASKS", "Suite", "Task", "get_task"]
