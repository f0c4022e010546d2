"""A `Task` from any gymnasium env factory with a Discrete action space: the common case of
bringing one's own environment without writing a task or a vector env.

    def make_env(seed: int) -> gym.Env: ...   # instance `seed` of your family (goal, layout, ...)
    TASK = GymTask("my_env", make_env, source="q_learning")

and then `python -m headless_ad collect --task my_module:TASK`, and so on. Instance i of a suite
is `make_env(s_i)` with s_i drawn from the suite's seed (prefix-stable: instance i depends only
on the seed and i). The instances run side by side in Gymnasium's own `SyncVectorEnv` (SAME_STEP
autoreset, one Python call per instance and step: slower than a native numpy vector env, which
a hand-written `Task` can provide, or `make_vector_env(seeds)` here: your own vector env of the
instances `make_env(seeds[i])`, exposing their `action_mask`). `available_actions(env)` says which
actions of its `Discrete(n)` each instance offers (default: all n): the action mask of the shared
pipeline.

Observations: `Discrete(n)` ones are integers (the model embeds n of them), `Box` ones are
flattened to vectors. Source algorithms of `learners.py`: q_learning (Discrete observations),
linucb (Box observations: a context per step), thompson (Bernoulli rewards) and ucb (both ignore
observations), random. The metric is the mean reward per step over the last quarter of each
history (higher is better).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from headless_ad.learners import UCB, Learner, LinUCB, QLearning, RandomLearner, ThompsonSampling
from headless_ad.model import ObservationKind
from headless_ad.rollout import Rollout
from headless_ad.tasks.base import Task, apply_spec, suite_field

LEARNERS = ("q_learning", "linucb", "thompson", "ucb", "random")
EnvFactory = Callable[[int], gym.Env]


@dataclass(frozen=True)
class GymSuite:
    num_instances: int
    horizon: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_instances < 1 or self.horizon < 1:
            raise ValueError("num_instances and horizon must be >= 1")

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    def instance_seeds(self) -> np.ndarray:
        """The seed `make_env` gets for each instance; row i depends only on the suite's seed and i."""
        return np.random.default_rng(self.seed).integers(0, 2**31, self.num_instances)


class GymVectorEnv(gym.vector.SyncVectorEnv):
    """Instances of a gymnasium env stepped one by one (SAME_STEP autoreset), padded to a common
    `Discrete(width)` action space with `action_mask` (num_envs, width), observations flattened."""

    def __init__(self, envs: list[gym.Env], action_mask: np.ndarray, observation_space: gym.Space) -> None:
        action_space = gym.spaces.Discrete(action_mask.shape[1])
        wrapped = [CommonSpaces(env, action_space, observation_space) for env in envs]
        super().__init__(
            [lambda env=env: env for env in wrapped], copy=True, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
        self.action_mask = action_mask

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        observations, info = super().reset(seed=seed, options=options)
        return observations, {**info, "action_mask": self.action_mask}

    def step(self, actions: np.ndarray):
        actions = np.asarray(actions, dtype=np.int64)
        rows = np.arange(self.num_envs)
        valid = (actions >= 0) & (actions < self.action_mask.shape[1])
        valid[valid] = self.action_mask[rows[valid], actions[valid]]
        if not valid.all():
            bad = int(np.flatnonzero(~valid)[0])
            raise ValueError(f"instance {bad} does not offer action {actions[bad]}")
        observations, rewards, terminated, truncated, info = super().step(actions)
        # Gymnasium fills `final_obs` only for finished instances; the learners read it for all.
        if "final_obs" in info:
            finished, final = info["_final_obs"], observations.copy()
            final[finished] = np.stack(list(info["final_obs"][finished])).astype(final.dtype)
            info["final_obs"] = final
        return observations, rewards, terminated, truncated, info


class CommonSpaces(gym.Wrapper):
    """One instance under the spaces all instances share: actions beyond its own are never taken
    (the mask forbids them); observations as the model takes them."""

    def __init__(self, env: gym.Env, action_space: gym.spaces.Discrete, observation_space: gym.Space) -> None:
        super().__init__(env)
        self.action_space, self.observation_space = action_space, observation_space

    def _observation(self, observation: Any) -> Any:
        if isinstance(self.observation_space, gym.spaces.Discrete):
            return np.int64(observation)
        return np.asarray(observation, dtype=np.float32).reshape(-1)

    def reset(self, **kwargs: Any):
        observation, info = self.env.reset(**kwargs)
        return self._observation(observation), info

    def step(self, action: Any):
        observation, reward, terminated, truncated, info = self.env.step(int(action))
        return self._observation(observation), float(reward), bool(terminated), bool(truncated), info


class GymTask(Task):
    """A task from `make_env(seed) -> gym.Env` (see the module docstring).

    `learner_options` passes keyword arguments to a source algorithm, by name (e.g.
    {"q_learning": {"num_episodes": 200}}: Q-learning's epsilon decays over 90% of that many
    episodes; default horizon // 20). `eval_seed` seeds the `eval` suite (held-out instances).
    `make_vector_env(seeds)`, when you have a native vector env: the instances `make_env(seeds[i])`
    stepped together, with an `action_mask` (num_envs, A) bool attribute and SAME_STEP autoreset
    (`info["final_obs"]`) if episodes end."""

    def __init__(
        self,
        name: str,
        make_env: EnvFactory,
        source: str = "q_learning",
        available_actions: Callable[[gym.Env], Sequence[int] | np.ndarray] | None = None,
        learner_options: dict[str, dict[str, Any]] | None = None,
        episodic: bool = True,
        eval_seed: int = 10_000,
        make_vector_env: Callable[[np.ndarray], gym.vector.VectorEnv] | None = None,
    ) -> None:
        self.name, self.make_instance, self.available_actions = name, make_env, available_actions
        self.make_vector_env = make_vector_env
        self.learner_options = learner_options or {}
        self.episodic, self.eval_seed = episodic, eval_seed
        probe = make_env(0)
        if not isinstance(probe.action_space, gym.spaces.Discrete):
            raise ValueError(
                f"task {name!r}: the env's action space is {probe.action_space}, not Discrete "
                "(Headless-AD chooses among discrete actions)"
            )
        self.observation_kind: ObservationKind
        space = probe.observation_space
        if isinstance(space, gym.spaces.Discrete):
            self.observation_kind, self.size = "discrete", int(space.n)
            self.common_observations: gym.Space = gym.spaces.Discrete(self.size)
        elif isinstance(space, gym.spaces.Box):
            self.observation_kind, self.size = "continuous", int(np.prod(space.shape))
            self.common_observations = gym.spaces.Box(-np.inf, np.inf, (self.size,), np.float32)
        else:
            raise ValueError(f"task {name!r}: observations must be Discrete or Box, got {space}")
        needs = {"q_learning": "discrete", "linucb": "continuous"}
        if source not in LEARNERS:
            raise ValueError(f"task {name!r}: unknown source {source!r}; known: {', '.join(LEARNERS)}")
        if needs.get(source, self.observation_kind) != self.observation_kind:
            raise ValueError(f"task {name!r}: {source} needs {needs[source]} observations, the env's are {space}")
        self.source_algorithm = source
        self.baselines = (source, "random") if source != "random" else ("random",)
        self.default_eval_suites = ("eval",)
        self.metric_name = "mean reward per step (last 25% of steps)"
        self.curve_labels = ("step", "cumulative reward")

    def train_suite(self, num_instances: int, horizon: int, seed: int, options: str = "") -> GymSuite:
        return apply_spec(options, GymSuite(num_instances, horizon, seed), {}, "--collect.train-suite")

    def parse_suite(self, spec: str, num_instances: int, horizon: int, train_seed: int) -> GymSuite:
        """`eval` (held-out instances), `train` (the training instances), or key=value pairs over
        eval: instances, seed, horizon (e.g. seed=7 for validation instances)."""
        base = GymSuite(num_instances, horizon, self.eval_seed)
        if spec in ("eval", "train"):
            return base if spec == "eval" else replace(base, seed=train_seed)
        keys = {
            "instances": suite_field("num_instances", int),
            "seed": suite_field("seed", int),
            "horizon": suite_field("horizon", int),
        }
        if "=" not in spec:
            raise ValueError(
                f"unknown {self.name} suite {spec!r}; use eval, train or key=value pairs ({', '.join(keys)})"
            )
        return apply_spec(spec, base, keys)

    def observation_size(self, suite: GymSuite) -> int:
        return self.size

    def make_env(self, suite: GymSuite, rows: slice | None = None) -> gym.vector.VectorEnv:
        seeds = suite.instance_seeds()[rows if rows is not None else slice(None)]
        if self.make_vector_env is not None:
            env = self.make_vector_env(seeds)
            mask = getattr(env, "action_mask", None)  # (a user's env: checked, not assumed)
            if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.shape[0] != len(seeds):
                raise ValueError(f"task {self.name!r}: make_vector_env must give an env with an action_mask "
                                 f"({len(seeds)}, actions) bool array")  # fmt: skip
            return env
        envs = [self.make_instance(int(seed)) for seed in seeds]
        width = max(int(env.action_space.n) for env in envs)
        mask = np.zeros((len(envs), width), dtype=bool)
        for i, env in enumerate(envs):
            if not isinstance(env.action_space, gym.spaces.Discrete):
                raise ValueError(f"task {self.name!r}: instance {i}'s action space is {env.action_space}, not Discrete")
            offered = range(int(env.action_space.n)) if self.available_actions is None else self.available_actions(env)
            offered = np.asarray(offered)
            mask[i, np.flatnonzero(offered) if offered.dtype == bool else offered.astype(np.int64)] = True
            if not mask[i].any():
                raise ValueError(f"task {self.name!r}: instance {i} offers no action")
        return GymVectorEnv(envs, mask, self.common_observations)

    def make_learner(self, name: str, env: GymVectorEnv, suite: GymSuite, rng: np.random.Generator) -> Learner:
        options = self.learner_options.get(name, {})
        if name == "q_learning":
            options = {"num_episodes": max(1, suite.horizon // 20), **options}
            return QLearning(env.action_mask, rng, num_states=self.size, **options)
        if name == "linucb":
            return LinUCB(env.action_mask, rng, dim=self.size, **options)
        learners = {"thompson": ThompsonSampling, "ucb": UCB, "random": RandomLearner}
        if name not in learners:
            raise ValueError(f"unknown {self.name} learner {name!r}; known: {', '.join(LEARNERS)}")
        return learners[name](env.action_mask, rng, **options)

    def metric(self, rollout: Rollout) -> float:
        """Mean over instances of the mean reward per step in the last quarter of the history."""
        last = rollout.rewards[:, -max(1, rollout.rewards.shape[1] // 4) :]
        return float(last.mean())

    def curve(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        curve = rollout.rewards.cumsum(axis=1).mean(axis=0)
        return np.arange(1, curve.size + 1), curve
