"""The transformer: causality, padding invariance, KV-cache decoding equals a full forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headless_ad.action_embeddings import ActionScoring, embed_actions, random_action_embeddings, with_no_action_row
from headless_ad.model import HeadlessTransformer, KVCache, ModelConfig, first_uses
from headless_ad.policy import ModelAgent, TemperatureSchedule
from headless_ad.results import temperature_slug


def make_model(observation_kind: str = "none", max_steps: int = 12, **kwargs) -> HeadlessTransformer:
    torch.manual_seed(0)
    size = 5 if observation_kind != "none" else 0
    config = ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        max_steps=max_steps,
        observation_kind=observation_kind,
        observation_size=size,
        **kwargs,
    )
    return HeadlessTransformer(config).eval()


def random_inputs(batch: int = 3, actions: int = 6, steps: int = 12, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    embeddings = random_action_embeddings(batch, actions, 32, generator)
    mask = torch.ones(batch, actions, dtype=torch.bool)
    mask[0, 4:] = False  # instance 0 offers 4 actions
    prev_actions = torch.randint(0, 4, (batch, steps), generator=generator)
    prev_actions[:, 0] = -1
    prev_rewards = torch.rand(batch, steps, generator=generator)
    return embeddings, mask, prev_actions, prev_rewards


def transitions(observations: torch.Tensor | None, dones: torch.Tensor | None):
    """Previous observations (-1 before the first) and previous episode ends, as the sampler cuts them."""
    if observations is None:
        return {}
    prev = torch.cat([torch.full_like(observations[:, :1], -1), observations[:, :-1]], dim=1)
    prev_dones = torch.cat([torch.zeros_like(dones[:, :1]), dones[:, :-1]], dim=1)
    return {"prev_observations": prev, "prev_dones": prev_dones}


def forward(model, embeddings, mask, prev_actions, prev_rewards, observations=None, cache=None, dones=None):
    vectors = embed_actions(with_no_action_row(embeddings), prev_actions)
    if observations is not None and dones is None:
        dones = torch.zeros(observations.shape, dtype=torch.bool)
    return model(embeddings, mask, observations, vectors, prev_rewards, cache=cache, **transitions(observations, dones))


@pytest.mark.parametrize("options", [{}, {"reward_gated_action": True}, {"action_memory": 8}])
def test_output_at_step_t_ignores_later_steps(options: dict) -> None:
    model = make_model(**options)
    embeddings, mask, prev_actions, prev_rewards = random_inputs()
    base = forward(model, embeddings, mask, prev_actions, prev_rewards)
    changed_actions, changed_rewards = prev_actions.clone(), prev_rewards.clone()
    changed_actions[:, 7:] = (changed_actions[:, 7:] + 1) % 4
    changed_rewards[:, 7:] += 1.0
    changed = forward(model, embeddings, mask, changed_actions, changed_rewards)
    torch.testing.assert_close(base[:, :7], changed[:, :7])
    assert not torch.allclose(base[:, 7:], changed[:, 7:])


@pytest.mark.parametrize("num_actions", [6, 80])
def test_action_memory_reads_each_actions_own_steps(num_actions: int) -> None:
    """Action k's memory is the sum of the values written by the steps that took k (zeros for
    actions never taken), also with more actions (80) than embedding dimensions (32)."""
    model = make_model(action_memory=8)
    readout = model.action_memory
    embeddings, _, prev_actions, _ = random_inputs(actions=num_actions)
    vectors = embed_actions(with_no_action_row(embeddings), prev_actions)
    hidden = torch.randn(*prev_actions.shape, 32)
    memory = readout.write(hidden, vectors, embeddings).sum(dim=1)  # (B, K, F)
    values = readout.value(hidden)
    for k in range(embeddings.shape[1]):
        expected = (values * (prev_actions == k).unsqueeze(-1)).sum(dim=1)
        torch.testing.assert_close(memory[:, k], expected, atol=1e-5, rtol=1e-5)


def test_action_memory_scores_only_available_actions() -> None:
    """The readout adds nothing along a padded (unavailable) slot's embedding."""
    model = make_model(action_memory=8)
    embeddings, mask, prev_actions, _ = random_inputs()
    vectors = embed_actions(with_no_action_row(embeddings), prev_actions)
    hidden = torch.randn(*prev_actions.shape, 32)
    memory = model.action_memory.write(hidden, vectors, embeddings).cumsum(dim=1)
    correction = model.action_memory.read(memory, hidden, embeddings, mask)
    along = torch.einsum("btw,bkw->btk", correction, embeddings)
    assert torch.all(along[0, :, 4:].abs() < 1e-6)
    assert torch.all(along[0, :, :4].abs() > 0)


@pytest.mark.parametrize("prompt_key_bias", [False, True])
def test_padded_prompt_slots_change_nothing(prompt_key_bias: bool) -> None:
    model = make_model(prompt_key_bias=prompt_key_bias)
    embeddings, mask, prev_actions, prev_rewards = random_inputs()
    out = forward(model, embeddings, mask, prev_actions, prev_rewards)
    garbage = embeddings.clone()
    garbage[0, 4:] = torch.randn(2, 32) * 10  # padded slots of instance 0
    torch.testing.assert_close(out, forward(model, garbage, mask, prev_actions, prev_rewards))
    # The same instance alone, without padding, gives the same outputs.
    alone = forward(model, embeddings[:1, :4], mask[:1, :4], prev_actions[:1], prev_rewards[:1])
    torch.testing.assert_close(out[:1], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("prompt_key_bias", [False, True])
def test_prompt_key_bias_makes_attention_to_the_prompt_independent_of_its_size(prompt_key_bias: bool) -> None:
    """K copies of one action embedding: with the -log K bias the history cannot tell K = 2 from 7."""
    model = make_model(prompt_key_bias=prompt_key_bias)
    embeddings, _, prev_actions, prev_rewards = random_inputs(batch=1)
    vectors = embed_actions(with_no_action_row(embeddings), prev_actions)
    outputs = []
    for size in (2, 7):
        prompt = embeddings[:, :1].expand(1, size, 32)
        outputs.append(model(prompt, torch.ones(1, size, dtype=torch.bool), None, vectors, prev_rewards))
    if prompt_key_bias:
        torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    else:
        assert (outputs[0] - outputs[1]).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("observation_kind", "options"),
    [
        ("none", {}),
        ("discrete", {"transition_tokens": False}),
        ("discrete", {}),
        ("none", {"reward_gated_action": True}),
        ("discrete", {"prompt_key_bias": True}),
        ("continuous", {"action_regression_features": True}),
        ("none", {"first_use_action": True}),
        ("continuous", {"action_memory": 8}),
    ],
)
def test_kv_cache_decoding_equals_full_forward(observation_kind: str, options: dict) -> None:
    model = make_model(observation_kind, **options)
    embeddings, mask, prev_actions, prev_rewards = random_inputs()
    observations = {
        "none": None,
        "discrete": torch.randint(0, 5, prev_actions.shape),
        "continuous": torch.randn(*prev_actions.shape, 5),
    }[observation_kind]
    dones = torch.rand(prev_actions.shape) < 0.3
    full = forward(model, embeddings, mask, prev_actions, prev_rewards, observations, dones=dones)
    cache = KVCache(model.config, 3, 6 + 12, torch.device("cpu"), torch.float32)
    first = forward(
        model,
        embeddings,
        mask,
        prev_actions[:, :1],
        prev_rewards[:, :1],
        None if observations is None else observations[:, :1],
        cache=cache,
        dones=dones[:, :1],
    )
    outputs = [first[:, 0]]
    vectors = embed_actions(with_no_action_row(embeddings), prev_actions)
    extra = transitions(observations, dones)
    for t in range(1, 12):
        obs = None if observations is None else observations[:, t : t + 1]
        step_extra = {name: value[:, t : t + 1] for name, value in extra.items()}
        outputs.append(model.decode(cache, obs, vectors[:, t : t + 1], prev_rewards[:, t : t + 1], **step_extra))
    torch.testing.assert_close(torch.stack(outputs, 1), full, atol=1e-5, rtol=1e-5)


def test_agent_with_reencode_every_1_equals_full_recompute() -> None:
    """Past the window, re-encoding every step must equal running the last `window` steps afresh."""
    window = 6
    model = make_model(max_steps=window)
    action_mask = np.ones((2, 5), dtype=bool)
    agent = ModelAgent(model, action_mask, "argmax", ActionScoring(), seed=0, reencode_every=1)
    rng = np.random.default_rng(0)
    for t in range(15):
        agent.act(np.zeros(2, dtype=np.int64))
        out_cached = agent.last_output
        keep = min(t + 1, window)
        vectors = embed_actions(agent.embeddings_with_no_action, torch.stack(agent.prev_actions[-keep:], 1))
        rewards = torch.stack(agent.prev_rewards[-keep:], 1)
        with torch.no_grad():
            full = model(agent.embeddings, agent.action_mask, None, vectors, rewards)[:, -1]
        torch.testing.assert_close(out_cached, full, atol=1e-5, rtol=1e-5)
        agent.update(None, rng.integers(0, 5, 2), rng.random(2))


def test_reordering_the_action_set_changes_no_output() -> None:
    """The prompt is a set: permuting its slots (same actions, same history) leaves every output equal."""
    model = make_model()
    embeddings, mask, prev_actions, prev_rewards = random_inputs()
    vectors = embed_actions(with_no_action_row(embeddings), prev_actions)
    out = model(embeddings, mask, None, vectors, prev_rewards)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    permuted = model(embeddings[:, perm], mask[:, perm], None, vectors, prev_rewards)
    torch.testing.assert_close(out, permuted, atol=1e-5, rtol=1e-5)


def test_cached_agent_acts_exactly_like_full_recompute() -> None:
    """Same seed, same rewards: the KV-cache agent and the recompute-everything agent produce the
    same outputs at every step, inside the window and past it (reencode_every=1)."""
    model = make_model(max_steps=5)
    action_mask = np.ones((3, 4), dtype=bool)
    cached = ModelAgent(model, action_mask, "sample", ActionScoring(), seed=3, reencode_every=1)
    recompute = ModelAgent(model, action_mask, "sample", ActionScoring(), seed=3, use_cache=False)
    rng = np.random.default_rng(1)
    for _ in range(9):
        actions = cached.act(np.zeros(3, dtype=np.int64))
        np.testing.assert_array_equal(actions, recompute.act(np.zeros(3, dtype=np.int64)))
        torch.testing.assert_close(cached.last_output, recompute.last_output, atol=1e-5, rtol=1e-5)
        rewards = rng.random(3)
        cached.update(None, actions, rewards)
        recompute.update(None, actions, rewards)


def test_transition_tokens_are_causal_and_carry_the_previous_observation() -> None:
    model = make_model("discrete")
    embeddings, mask, prev_actions, prev_rewards = random_inputs()
    generator = torch.Generator().manual_seed(1)
    observations = torch.randint(0, 5, prev_actions.shape, generator=generator)
    dones = torch.rand(prev_actions.shape, generator=generator) < 0.3
    base = forward(model, embeddings, mask, prev_actions, prev_rewards, observations, dones=dones)
    changed_obs, changed_dones = observations.clone(), dones.clone()
    changed_obs[:, 7:] = (changed_obs[:, 7:] + 1) % 5
    changed_dones[:, 7:] = ~changed_dones[:, 7:]
    changed = forward(model, embeddings, mask, prev_actions, prev_rewards, changed_obs, dones=changed_dones)
    torch.testing.assert_close(base[:, :7], changed[:, :7])
    assert not torch.allclose(base[:, 7:], changed[:, 7:])
    # Step 8's token holds observation 7 as its previous observation; step 7's does not.
    with torch.no_grad():
        extra = transitions(observations, dones)
        tokens = model.step_tokens(observations, torch.zeros(3, 12, 32), prev_rewards, **extra)
        extra["prev_observations"][:, 8] = (extra["prev_observations"][:, 8] + 1) % 5
        moved = model.step_tokens(observations, torch.zeros(3, 12, 32), prev_rewards, **extra)
    changed_steps = (tokens - moved).abs().sum(-1).gt(0).any(0)
    assert changed_steps.tolist() == [t == 8 for t in range(12)]


def test_cached_agent_with_observations_and_episode_ends_equals_full_recompute() -> None:
    model = make_model("discrete", max_steps=5)
    action_mask = np.ones((3, 4), dtype=bool)
    cached = ModelAgent(model, action_mask, "sample", ActionScoring(), seed=3, reencode_every=1)
    recompute = ModelAgent(model, action_mask, "sample", ActionScoring(), seed=3, use_cache=False)
    rng = np.random.default_rng(2)
    for _ in range(11):
        observations = rng.integers(0, 5, 3)
        actions = cached.act(observations)
        np.testing.assert_array_equal(actions, recompute.act(observations))
        torch.testing.assert_close(cached.last_output, recompute.last_output, atol=1e-5, rtol=1e-5)
        rewards, ended = rng.random(3), rng.random(3) < 0.3
        for agent in (cached, recompute):
            agent.update(observations, actions, rewards, terminations=ended, truncations=np.zeros(3, dtype=bool))


def test_temperature_anneals_per_instance_with_the_episodes_it_has_finished() -> None:
    schedule = TemperatureSchedule(0.8, 0.4, episodes=4)
    agent = ModelAgent(
        make_model("discrete"), np.ones((3, 4), dtype=bool), "sample", ActionScoring(), 0, sample_temperature=schedule
    )
    ends_every = np.array([1, 2, 0])  # instance 0 ends an episode every step, 1 every other, 2 never
    for step in range(1, 7):
        actions = agent.act(np.zeros(3, dtype=np.int64))
        ended = (ends_every > 0) & (step % np.maximum(ends_every, 1) == 0)
        agent.update(np.zeros(3), actions, np.zeros(3), terminations=ended, truncations=np.zeros(3, dtype=bool))
    # After 6 steps: 6, 3 and 0 episodes; the schedule reaches 0.4 at 4 and stays there.
    torch.testing.assert_close(agent.temperature.at(agent.episodes_done), torch.tensor([[0.4], [0.5], [0.8]]))
    assert TemperatureSchedule(0.7).at(torch.tensor([0, 100])) == 0.7
    with pytest.raises(ValueError, match="needs a --final-sample-temperature"):
        TemperatureSchedule(0.7, None, episodes=10)


def test_temperature_anneals_with_the_steps_taken_for_one_long_episode() -> None:
    schedule = TemperatureSchedule(1.0, 0.2, steps=4)
    agent = ModelAgent(
        make_model("discrete"), np.ones((2, 4), dtype=bool), "sample", ActionScoring(), 0, sample_temperature=schedule
    )
    seen = []
    for _ in range(6):
        actions = agent.act(np.zeros(2, dtype=np.int64))
        seen.append(agent.temperature.at(agent.episodes_done, agent.steps_done))
        agent.update(np.zeros(2), actions, np.zeros(2))
    # Steps taken before each action: 0..5; linear from 1.0 at 0 to 0.2 at 4, then flat. No episode ends.
    expected = [1.0, 0.8, 0.6, 0.4, 0.2, 0.2]
    for temperature, value in zip(seen, expected, strict=True):
        torch.testing.assert_close(temperature, torch.full((2, 1), value))
    assert schedule.describe() == "1 -> 0.2 over 4 steps"
    with pytest.raises(ValueError, match="exclude each other"):
        TemperatureSchedule(1.0, 0.2, episodes=4, steps=4)


def test_min_p_is_part_of_the_schedule_its_name_and_its_checks() -> None:
    schedule = TemperatureSchedule(1.0, min_p=0.2)
    assert schedule.describe() == "1, min-p 0.2"
    assert temperature_slug(schedule.describe()) == "1minp0.2"
    assert TemperatureSchedule.from_options({"sample_temperature": 0.6, "sample_min_p": 0.1}).min_p == 0.1
    assert TemperatureSchedule.from_options({"sample_temperature": 0.6}).describe() == "0.6"
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="--sample-min-p"):
            TemperatureSchedule(1.0, min_p=bad)


@pytest.mark.parametrize("regression", [False, True])
def test_action_regression_features_let_a_token_tell_which_action_met_which_context(regression: bool) -> None:
    """Without the features a step token is a sum of an action part and a context part, so swapping
    which of two actions met which of two contexts cancels out; with them it does not."""
    model = make_model("continuous", action_regression_features=regression)
    embeddings = random_action_embeddings(1, 2, 32, torch.Generator().manual_seed(0))
    vectors = embeddings.unsqueeze(1)  # (1, 1, 2, 32): the two actions' embeddings
    contexts = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    rewards, dones = torch.ones(1, 1), torch.zeros(1, 1, dtype=torch.bool)

    def token(action: int, context: int) -> torch.Tensor:
        return model.step_tokens(
            contexts[None, None, 0], vectors[:, :, action], rewards, contexts[None, None, context], dones
        )

    interaction = token(0, 0) + token(1, 1) - token(0, 1) - token(1, 0)
    assert (interaction.abs().max() > 1e-4) == regression


def test_action_regression_features_need_continuous_observations() -> None:
    with pytest.raises(ValueError, match="continuous observations"):
        make_model("discrete", action_regression_features=True)


def test_first_uses_flags_each_action_once_and_never_the_missing_one() -> None:
    embeddings = random_action_embeddings(1, 3, 32, torch.Generator().manual_seed(0))
    vectors = embed_actions(with_no_action_row(embeddings), torch.tensor([[-1, 2, 0, 2, 1, 0, 1]]))
    assert first_uses(vectors).tolist() == [[False, True, True, False, True, False, False]]
    # Continued from a cache holding the first four steps: the same flags for the rest.
    assert first_uses(vectors[:, 4:], earlier=vectors[:, :4]).tolist() == [[True, False, False]]
    # Gaussian (ablation) embeddings, whose dot products between different actions exceed 1 here,
    # are told apart by direction.
    gaussian = torch.randn(1, 3, 32, generator=torch.Generator().manual_seed(0))
    vectors = embed_actions(with_no_action_row(gaussian), torch.tensor([[-1, 2, 0, 2, 1, 0, 1]]))
    assert first_uses(vectors).tolist() == [[False, True, True, False, True, False, False]]
