"""Gymnasium environments whose set of actions varies from one instance to the next.

A user's own `envs/` folder without an `__init__.py` (anywhere on sys.path, e.g. the project
directory one runs from) joins this package: its modules import as `envs.<module>` beside ours
(see docs/own_environment.md).
"""

from pkgutil import extend_path

from gymnasium.envs.registration import register

__path__ = extend_path(__path__, __name__)

from envs.bandit import BernoulliBandit, BernoulliBanditVectorEnv
from envs.contextual_bandit import ContextualBandit, ContextualBanditVectorEnv
from envs.darkroom import Darkroom, DarkroomVectorEnv
from envs.minigrid import MiniGridMacro, MiniGridMacroVectorEnv

register(
    id="BernoulliBandit-v0",
    entry_point="envs.bandit:BernoulliBandit",
    vector_entry_point="envs.bandit:BernoulliBanditVectorEnv",
)
register(
    id="ContextualBandit-v0",
    entry_point="envs.contextual_bandit:ContextualBandit",
    vector_entry_point="envs.contextual_bandit:ContextualBanditVectorEnv",
)
register(
    id="Darkroom-v0",
    entry_point="envs.darkroom:Darkroom",
    vector_entry_point="envs.darkroom:DarkroomVectorEnv",
)
register(
    id="MiniGridMacro-v0",
    entry_point="envs.minigrid:MiniGridMacro",
    vector_entry_point="envs.minigrid:MiniGridMacroVectorEnv",
)

__all__ = [
    "BernoulliBandit",
    "BernoulliBanditVectorEnv",
    "ContextualBandit",
    "ContextualBanditVectorEnv",
    "Darkroom",
    "DarkroomVectorEnv",
    "MiniGridMacro",
    "MiniGridMacroVectorEnv",
]
