"""Source algorithms, vectorised over environment instances.

Thompson Sampling, UCB, LinUCB, tabular Q-learning and random. Every learner holds the
statistics of all instances in (num_envs, max_actions, ...) arrays and acts for all of them with
a handful of numpy operations. `action_mask` says which actions each instance offers; a learner
never picks one outside it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Learner(Protocol):
    """What the collector and the evaluator need from anything that acts and learns.

    A learner whose action distribution is known may also tell it in `act`, in one of two forms.
    `last_policy`, a mixture: (mode (N,), spread (N,)), weight 1 - spread on the mode action and
    spread shared evenly by the available actions. `last_probabilities`: (N, A) probabilities of
    every action, 0 where unavailable. The collector records it (policy_actions and policy_spread,
    or policy_probabilities), and training with --policy-targets learns that distribution instead
    of the action sampled from it.
    """

    def act(self, observations: np.ndarray) -> np.ndarray:
        """One action per instance, given the current observations."""
        ...

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        *,
        next_observations: np.ndarray,
        terminations: np.ndarray,
        truncations: np.ndarray,
    ) -> None:
        """Learn from the transition just taken (bandit learners need only the first three)."""
        ...


def masked_argmax(scores: np.ndarray, action_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Argmax over available actions per row; ties broken uniformly at random."""
    scores = np.where(action_mask, scores, -np.inf)
    best = scores == scores.max(axis=1, keepdims=True)
    # A random key among the best entries picks one uniformly without a Python loop.
    keys = np.where(best, rng.random(scores.shape), -1.0)
    return keys.argmax(axis=1)


class RandomLearner:
    """Uniform over each instance's available actions."""

    def __init__(self, action_mask: np.ndarray, rng: np.random.Generator) -> None:
        self.action_mask = action_mask
        self.rng = rng

    def act(self, observations: np.ndarray) -> np.ndarray:
        return masked_argmax(np.zeros(self.action_mask.shape), self.action_mask, self.rng)

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, **_: np.ndarray) -> None:
        pass


class ThompsonSampling:
    """Thompson Sampling for Bernoulli rewards with a Beta(prior_alpha, prior_beta) prior per arm.

    The posteriors of the available arms are kept in flat arrays, so every step draws exactly one
    Beta sample per real arm: Beta sampling is most of the step's cost, and padding would waste it.
    A Beta(a, b) draw is X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b), both drawn by one float32
    `standard_gamma` call into a reused buffer: measured 13% faster per step than `Generator.beta`
    in float64, and float32 resolves posteriors far finer than a 300-step history can.
    (Collection spreads instances over cores in chunks, see `collect.run_source`.)

    With `policy_draws` > 0, `act` also estimates the probability that each arm's sample is the
    largest from that many further posterior draws (`last_probabilities`, Learner): an unbiased
    estimate of the distribution its action was drawn from (64 draws: collection about 40x slower).
    """

    def __init__(
        self,
        action_mask: np.ndarray,
        rng: np.random.Generator,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        policy_draws: int = 0,
    ) -> None:
        if prior_alpha <= 0 or prior_beta <= 0:
            raise ValueError(f"Beta prior parameters must be > 0, got ({prior_alpha}, {prior_beta})")
        if policy_draws < 0:
            raise ValueError(f"policy_draws must be >= 0, got {policy_draws}")
        self.policy_draws = policy_draws
        self.last_probabilities: np.ndarray | None = None
        self.action_mask = action_mask
        self.rng = rng
        self.num_arms = int(action_mask.sum())
        # slot[i, a]: where arm a of instance i lives in the flat arrays (-1 for padding).
        slot = np.full(action_mask.shape, -1)
        slot[action_mask] = np.arange(self.num_arms)
        self.slot_flat, self.arm_offset = slot.reshape(-1), np.arange(action_mask.shape[0]) * action_mask.shape[1]
        # Gamma shapes of all arms: [alpha_0 .. alpha_{n-1}, beta_0 .. beta_{n-1}].
        self.shapes = np.concatenate(
            [np.full(self.num_arms, prior_alpha, np.float32), np.full(self.num_arms, prior_beta, np.float32)]
        )
        self.gammas = np.empty_like(self.shapes)
        # Padding scores -1, below any sample; reused every step (a fresh array costs page faults).
        self.scores = np.full(action_mask.shape, -1.0, dtype=np.float32)

    def act(self, observations: np.ndarray) -> np.ndarray:
        self.rng.standard_gamma(self.shapes, dtype=np.float32, out=self.gammas)
        x, y = self.gammas[: self.num_arms], self.gammas[self.num_arms :]
        y += x
        # Continuous samples practically never tie, so a plain argmax will do.
        self.scores[self.action_mask] = x / y
        if self.policy_draws:
            self.last_probabilities = self.arm_probabilities()
        return self.scores.argmax(axis=1)

    def arm_probabilities(self) -> np.ndarray:
        """(N, A) share of `policy_draws` posterior draws in which each arm's sample is the largest."""
        draws = self.policy_draws
        gammas = self.rng.standard_gamma(np.repeat(self.shapes[:, None], draws, axis=1), dtype=np.float32)
        x, y = gammas[: self.num_arms], gammas[self.num_arms :]
        scores = np.full((*self.action_mask.shape, draws), -1.0, dtype=np.float32)
        scores[self.action_mask] = x / (x + y)
        best = scores.argmax(axis=1) + np.arange(len(scores))[:, None] * scores.shape[1]  # flat (N, draws)
        counts = np.bincount(best.ravel(), minlength=scores.shape[0] * scores.shape[1])
        return (counts.reshape(self.action_mask.shape) / draws).astype(np.float32)

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, **_: np.ndarray) -> None:
        slots = self.slot_flat.take(self.arm_offset + actions)
        self.shapes[slots] += rewards
        self.shapes[slots + self.num_arms] += 1.0 - rewards


class UCB:
    """UCB1: pull every arm once, then the arm maximising mean + c * sqrt(2 ln t / n)."""

    def __init__(self, action_mask: np.ndarray, rng: np.random.Generator, exploration: float = 1.0) -> None:
        self.action_mask = action_mask
        self.rng = rng
        self.exploration = exploration
        self.counts = np.zeros(action_mask.shape)
        self.reward_sums = np.zeros(action_mask.shape)

    def act(self, observations: np.ndarray) -> np.ndarray:
        total = self.counts.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = self.reward_sums / self.counts
            bonus = self.exploration * np.sqrt(2.0 * np.log(np.maximum(total, 1.0)) / self.counts)
        scores = np.where(self.counts > 0, means + bonus, np.inf)
        return masked_argmax(scores, self.action_mask, self.rng)

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, **_: np.ndarray) -> None:
        rows = np.arange(len(actions))
        self.counts[rows, actions] += 1.0
        self.reward_sums[rows, actions] += rewards


class QLearning:
    """Tabular epsilon-greedy Q-learning, one Q table per instance, shape (num_envs, num_states, max_actions).

    Defaults are the Headless-AD Darkroom settings: Q starts U(0, 1) (U(0, initial_q_scale) in
    general), learning rate 0.9933, discount 0.6238, and epsilon falls linearly from 1 to 0 over
    the first `decay_fraction` of `num_episodes` episodes, counted per instance from the
    terminations and truncations it is given (so an instance whose episodes end early also
    explores less sooner).

    Unlike the bandit learners it needs the whole transition, so the collector must call
    `update(observations, actions, rewards, next_observations=..., terminations=...,
    truncations=...)`. With a SAME_STEP vector env, `next_observations` is `info["final_obs"]`
    (the cell reached before any reset), not the returned observation. Terminated transitions
    are not bootstrapped; truncated ones are, since the time limit is not part of the task.
    `last_policy` is the epsilon-greedy distribution of the last `act`: (greedy actions, epsilon).
    """

    def __init__(
        self,
        action_mask: np.ndarray,
        rng: np.random.Generator,
        num_states: int,
        learning_rate: float = 0.9933,
        discount: float = 0.6238,
        num_episodes: int = 200,
        decay_fraction: float = 0.9,
        initial_q_scale: float = 1.0,
    ) -> None:
        if num_states < 1:
            raise ValueError(f"num_states must be >= 1, got {num_states}")
        if num_episodes < 1:
            raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
        if not 0.0 < decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in (0, 1], got {decay_fraction}")
        if initial_q_scale <= 0:
            raise ValueError(f"initial_q_scale must be > 0, got {initial_q_scale}")
        self.action_mask = action_mask
        self.rng = rng
        self.learning_rate = learning_rate
        self.discount = discount
        self.decay_episodes = decay_fraction * num_episodes
        num_envs, max_actions = action_mask.shape
        self.q = rng.uniform(0.0, initial_q_scale, (num_envs, num_states, max_actions))
        # Flat views: gathering rows of (num_envs * num_states, max_actions) by one index array is
        # about twice as fast as numpy's advanced indexing with (rows, states[, actions]) arrays.
        self.q_rows = self.q.reshape(num_envs * num_states, max_actions)
        self.q_flat = self.q.reshape(-1)
        self.state_offset = np.arange(num_envs) * num_states
        self.episodes = np.zeros(num_envs, dtype=np.int64)
        self.last_policy: tuple[np.ndarray, np.ndarray] | None = None
        # Darkroom suites give every instance the same number of actions: then nothing needs masking.
        self.all_available = bool(action_mask.all())

    @property
    def epsilon(self) -> np.ndarray:
        """Current exploration rate of each instance."""
        return np.clip(1.0 - self.episodes / self.decay_episodes, 0.0, 1.0)

    def _masked(self, values: np.ndarray) -> np.ndarray:
        return values if self.all_available else np.where(self.action_mask, values, -np.inf)

    def act(self, observations: np.ndarray) -> np.ndarray:
        # Q starts U(0, 1) and moves by continuous updates, so greedy ties do not occur in practice.
        actions = self._masked(self.q_rows.take(self.state_offset + observations, axis=0)).argmax(axis=1)
        epsilon = self.epsilon
        self.last_policy = (actions.copy(), epsilon)
        explore = np.flatnonzero(self.rng.random(len(observations)) < epsilon)
        if explore.size:  # uniform over the available actions, for the exploring instances only
            num_actions = self.action_mask.shape[1]
            if self.all_available:
                actions[explore] = self.rng.integers(0, num_actions, explore.size)
            else:
                actions[explore] = masked_argmax(
                    np.zeros((explore.size, num_actions)), self.action_mask[explore], self.rng
                )
        return actions

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray | None = None,
        terminations: np.ndarray | None = None,
        truncations: np.ndarray | None = None,
    ) -> None:
        # Optional only so the signature still fits `Learner`; learning needs all three.
        if next_observations is None or terminations is None or truncations is None:
            raise ValueError("QLearning.update needs next_observations, terminations and truncations (by keyword)")
        next_values = self._masked(self.q_rows.take(self.state_offset + next_observations, axis=0)).max(axis=1)
        targets = rewards + self.discount * np.where(terminations, 0.0, next_values)
        cells = (self.state_offset + observations) * self.q_rows.shape[1] + actions
        values = self.q_flat.take(cells)
        self.q_flat[cells] = values + self.learning_rate * (targets - values)
        self.episodes += np.logical_or(terminations, truncations)


class LinUCB:
    """Disjoint LinUCB (Li et al. 2010) for linear contextual bandits: one ridge regression per arm.

    Arm a keeps A_a = ridge * I + sum x x^T and b_a = sum r x over the contexts it was pulled
    in, and scores a context x by theta_a . x + alpha * sqrt(x^T A_a^-1 x) with theta_a =
    A_a^-1 b_a. Only A^-1 is stored, shape (num_envs, max_actions, dim, dim), and kept current
    with a Sherman-Morrison rank-one update, so no step inverts a matrix. Observations are the
    contexts, (num_envs, dim).
    """

    def __init__(
        self,
        action_mask: np.ndarray,
        rng: np.random.Generator,
        dim: int,
        alpha: float = 0.3,
        ridge: float = 1.0,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if ridge <= 0:
            raise ValueError(f"ridge must be > 0, got {ridge}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.action_mask = action_mask
        self.rng = rng
        self.alpha = alpha
        num_envs, max_actions = action_mask.shape
        self.a_inv = np.broadcast_to(np.eye(dim) / ridge, (num_envs, max_actions, dim, dim)).copy()
        self.b = np.zeros((num_envs, max_actions, dim))

    def scores(self, observations: np.ndarray) -> np.ndarray:
        """(num_envs, max_actions) upper confidence bound of every arm in the given contexts."""
        x = np.asarray(observations, dtype=np.float64)
        theta = np.einsum("naij,naj->nai", self.a_inv, self.b)
        a_inv_x = np.einsum("naij,nj->nai", self.a_inv, x)
        # Rounding can push a tiny variance below zero; clip before the square root.
        variance = np.maximum(np.einsum("nai,ni->na", a_inv_x, x), 0.0)
        return np.einsum("nai,ni->na", theta, x) + self.alpha * np.sqrt(variance)

    def act(self, observations: np.ndarray) -> np.ndarray:
        return masked_argmax(self.scores(observations), self.action_mask, self.rng)

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, **_: np.ndarray) -> None:
        rows = np.arange(len(actions))
        x = np.asarray(observations, dtype=np.float64)
        a_inv = self.a_inv[rows, actions]  # (num_envs, dim, dim), symmetric
        a_inv_x = np.einsum("nij,nj->ni", a_inv, x)
        # (A + x x^T)^-1 = A^-1 - (A^-1 x)(A^-1 x)^T / (1 + x^T A^-1 x), using A^-1 = A^-T.
        denominator = 1.0 + np.einsum("ni,ni->n", a_inv_x, x)
        self.a_inv[rows, actions] = a_inv - a_inv_x[:, :, None] * a_inv_x[:, None, :] / denominator[:, None, None]
        self.b[rows, actions] += np.asarray(rewards, dtype=np.float64)[:, None] * x
