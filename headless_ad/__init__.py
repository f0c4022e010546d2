"""Headless-AD: in-context reinforcement learning over variable discrete action spaces.

The Python API mirrors the command line (`python -m headless_ad --help`): the same dataclasses
configure the same functions.

    from headless_ad import PRESETS, EvaluateConfig, replace_options, train, evaluate_checkpoint, load_agent

    config = PRESETS["bandit"][1]                 # a TrainConfig
    config = replace_options(config, total_steps=2_000, seq_len=200)  # options by their flags' names
    checkpoint = train(config)                    # collects the histories first if needed
    evaluate_checkpoint(EvaluateConfig(checkpoint=checkpoint))
    agent = load_agent(checkpoint)                # acts in-context in any gymnasium env

Your own environment (docs/own_environment.md): a `Task` of your own, named as
`package.module:Task` wherever a task name goes (or `register_task`); `GymTask` builds one from a
gymnasium env factory and a source algorithm; `import_histories` turns histories you already
have into a store to train on.
"""

from headless_ad.agent import InContextAgent, load_agent
from headless_ad.collect import CollectConfig, collect
from headless_ad.evaluate import EvaluateConfig, evaluate_checkpoint
from headless_ad.gym_task import GymSuite, GymTask
from headless_ad.history_import import import_histories
from headless_ad.model import ModelConfig
from headless_ad.policy import TemperatureSchedule
from headless_ad.presets import PRESETS
from headless_ad.tasks import Suite, Task, get_task, register_task
from headless_ad.train_config import (
    DataConfig,
    EvaluationConfig,
    OptimisationConfig,
    RuntimeConfig,
    TrainConfig,
    replace_options,
)
from headless_ad.trainer import train

__all__ = [
    "PRESETS",
    "CollectConfig",
    "DataConfig",
    "EvaluateConfig",
    "EvaluationConfig",
    "GymSuite",
    "GymTask",
    "InContextAgent",
    "ModelConfig",
    "OptimisationConfig",
    "RuntimeConfig",
    "Suite",
    "Task",
    "TemperatureSchedule",
    "TrainConfig",
    "collect",
    "evaluate_checkpoint",
    "get_task",
    "import_histories",
    "load_agent",
    "register_task",
    "replace_options",
    "train",
]
