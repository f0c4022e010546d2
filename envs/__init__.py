"""Gymnasium environments whose set of actions varies from one instance to the next."""

from gymnasium.envs.registration import register

from envs.bandit import BernoulliBandit, BernoulliBanditVectorEnv
from envs.contextual_bandit import ContextualBandit, ContextualBanditVectorEnv
from envs.darkroom import Darkroom, DarkroomVectorEnv

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

__all__ = [
    "BernoulliBandit",
    "BernoulliBanditVectorEnv",
    "ContextualBandit",
    "ContextualBanditVectorEnv",
    "Darkroom",
    "DarkroomVectorEnv",
]
