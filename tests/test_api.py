"""The public Python API: training from Python, and a checkpoint acting in-context in a user's own env."""

from __future__ import annotations

import os
import runpy
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import headless_ad
from headless_ad import PRESETS, CollectConfig, InContextAgent, TrainConfig, load_agent, replace_options, train
from headless_ad.action_embeddings import ActionScoring
from headless_ad.evaluation import run_model
from headless_ad.model import HeadlessTransformer, ModelConfig
from headless_ad.tasks import get_task

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def tiny(config: TrainConfig, **changes) -> TrainConfig:
    model = replace(config.model, d_model=16, n_layers=1, n_heads=2)
    collect = replace(config.collect, num_instances=64, horizon=40)
    return replace_options(config, model=model, collect=collect, seq_len=40, batch_size=4, total_steps=6,
                           warmup_steps=2, eval_every=0, eval_suites=(), threads=1, **changes)  # fmt: skip


@pytest.fixture(scope="module")
def bandit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding runs/bandit/checkpoint.pt, trained from Python in a few steps."""
    directory = tmp_path_factory.mktemp("api")
    before = Path.cwd()
    os.chdir(directory)
    try:
        checkpoint = train(tiny(PRESETS["bandit"][1], run_name="bandit"))
    finally:
        os.chdir(before)
    assert checkpoint == Path("runs/bandit/checkpoint.pt")
    return directory


def test_the_package_exports_its_documented_api() -> None:
    for name in headless_ad.__all__:
        assert getattr(headless_ad, name) is not None, name
    assert isinstance(PRESETS["bandit"][1], TrainConfig) and CollectConfig().task == "bandit"


def test_example_plays_a_users_own_bandit(bandit_run: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(bandit_run)
    runpy.run_path(str(EXAMPLES / "bandit_agent.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.startswith("arm 3 (the best) in ") and out.strip().endswith("of the last 100 pulls")
    assert len((EXAMPLES / "bandit_agent.py").read_text().splitlines()) <= 20


def test_agent_acts_as_the_evaluator_does(bandit_run: Path) -> None:
    """The same model, seed and instances: the agent's actions are the evaluator's, step for step."""
    task = get_task("bandit")
    suite = task.parse_suite("arms=3-7,instances=6,seed=5", 6, 130, 0)  # past the 40-step window
    agent = load_agent(bandit_run / "runs/bandit/checkpoint.pt", device="cpu")
    expected = run_model(task, suite, agent.model, "sample", agent.scoring, 3, agent.sample_temperature).actions
    env = task.make_env(suite)
    observations, _ = env.reset(seed=3)
    agent.reset(env.action_mask, seed=3)
    taken = []
    for _ in range(130):
        taken.append(agent.act(observations))
        observations, rewards, terminated, truncated, _ = env.step(taken[-1])
        agent.observe(rewards, terminated, truncated)
    np.testing.assert_array_equal(np.stack(taken, axis=1), expected)
    assert len(agent._agent.prev_actions) <= 2 * (40 + 1)  # memory bounded by the window, not the steps


def test_agent_picks_only_the_actions_each_instance_offers(bandit_run: Path) -> None:
    agent = load_agent(bandit_run / "runs/bandit/checkpoint.pt", selection="sample", sample_temperature=5.0)
    offered = [[1, 4, 6], [0, 2], [9, 3, 7, 5]]
    agent.reset(offered)
    chosen = []
    for _ in range(40):
        chosen.append(agent.act())
        agent.observe(np.zeros(3), False, False)
    chosen = np.stack(chosen, axis=1)
    for row, actions in zip(chosen, offered, strict=True):
        assert set(row) <= set(actions) and len(set(row)) > 1  # a hot temperature tries several
    mask = np.zeros((2, 7), dtype=bool)
    mask[0, [2, 5]] = mask[1, [0, 6]] = True
    agent.reset(mask)
    for _ in range(20):
        actions = agent.act()
        assert mask[[0, 1], actions].all()
        agent.observe([1.0, 0.0])
    agent.reset([3, 8])  # one instance: ints in and out
    action = agent.act()
    assert isinstance(action, int) and action in (3, 8)


def test_agent_in_a_gymnasium_vector_env(bandit_run: Path) -> None:
    means = [0.1, 0.8, 0.3, 0.2]

    class FourArms(gym.Env):
        action_space, observation_space = gym.spaces.Discrete(4), gym.spaces.Discrete(1)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return 0, {}

        def step(self, action):
            return 0, float(self.np_random.random() < means[action]), False, False, {}

    envs = gym.vector.SyncVectorEnv([FourArms] * 3, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    observations, _ = envs.reset(seed=0)
    agent = load_agent(bandit_run / "runs/bandit/checkpoint.pt")
    agent.reset(np.array([[True, True, True, True], [False, True, True, False], [True, False, False, True]]))
    for _ in range(10):
        actions = agent.act(observations)
        assert actions.shape == (3,) and actions[1] in (1, 2) and actions[2] in (0, 3)
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        agent.observe(rewards, terminated, truncated)


def test_agent_misuse_fails_with_one_clear_line() -> None:
    config = ModelConfig(
        d_model=16, n_layers=1, n_heads=2, max_steps=8, observation_kind="discrete", observation_size=5
    )
    agent = InContextAgent(HeadlessTransformer(config), ActionScoring())
    with pytest.raises(RuntimeError, match="call reset"):
        agent.act(0)
    with pytest.raises(ValueError, match="at least one action"):
        agent.reset(np.zeros((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="distinct ids"):
        agent.reset([[1, 1]])
    agent.reset([[0, 1], [2]])
    with pytest.raises(ValueError, match=r"observations must be in \[0, 5\)"):
        agent.act(np.array([1, 5]))
    with pytest.raises(ValueError, match="expected 2 integer observation"):
        agent.act(np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="observe\\(\\) before act"):
        agent.observe([0, 0])
    for _ in range(12):  # past the window: the context slides
        assert agent.act(np.array([1, 4])).tolist()[1] == 2
        agent.observe([0.0, 1.0])
    agent.act(np.array([0, 0]))
    with pytest.raises(RuntimeError, match="act\\(\\) was called twice"):
        agent.act(np.array([0, 0]))
