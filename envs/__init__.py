"""Gymnasium environments whose set of actions varies from one instance to the next."""

from gymnasium.envs.registration import register

from envs.bandit import BernoulliBandit, BernoulliBanditVectorEnv
from envs.darkroom import Darkroom, DarkroomVectorEnv

register(
    id="BernoulliBandit-v0",
    entry_point="envs.bandit:BernoulliBandit",
    vector_entry_point="envs.bandit:BernoulliBanditVectorEnv",
)
register(
    id="Darkroom-v0",
    entry_point="envs.darkroom:Darkroom",
    vector_entry_point="envs.darkroom:DarkroomVectorEnv",
)

__all__ = ["BernoulliBandit", "BernoulliBanditVectorEnv", "Darkroom", "DarkroomVectorEnv"]
