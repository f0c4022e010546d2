"""Gymnasium environments whose set of actions varies from one instance to the next."""

from gymnasium.envs.registration import register

from envs.bandit import BernoulliBandit, BernoulliBanditVectorEnv

register(
    id="BernoulliBandit-v0",
    entry_point="envs.bandit:BernoulliBandit",
    vector_entry_point="envs.bandit:BernoulliBanditVectorEnv",
)

__all__ = ["BernoulliBandit", "BernoulliBanditVectorEnv"]
