"""Tasks from outside the package: a user's own env through collect, train and evaluate; the
generic gymnasium adapter; histories imported from arrays; bad input in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from command_line import cli, cli_error

from envs.bandit import BernoulliBandit, BernoulliBanditVectorEnv
from headless_ad import PRESETS, GymTask, import_histories, register_task, replace_options
from headless_ad.evaluation import run_baselines
from headless_ad.tasks import TASKS, checked, get_task

ROOT = Path(__file__).resolve().parents[1]
CORRIDOR = "examples.jump_corridor:TASK"
TINY_MODEL = ["--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2", "--batch-size", "4",
              "--total-steps", "4", "--warmup-steps", "1", "--eval-every", "0", "--threads", "1"]  # fmt: skip


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))  # `examples` as a user's own package
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_users_task_runs_collect_train_evaluate_from_the_cli(monkeypatch, capsys, in_tmp: Path) -> None:
    collect = ["--num-instances", "32", "--horizon", "60"]
    cli(monkeypatch, "collect", "--task", CORRIDOR, *collect)
    store = in_tmp / "runs/histories/jump_corridor-q_learning-n32-t60-s0"
    meta = json.loads((store / "meta.json").read_text())
    assert (meta["task"], meta["task_spec"]) == ("jump_corridor", CORRIDOR)
    mask = np.load(store / "action_mask.npy")
    assert mask.shape == (32, 8) and len(set(mask.sum(axis=1))) > 1  # a variable action subset per instance
    actions = np.load(store / "actions.npy")
    assert mask[np.arange(32)[:, None], actions].all()

    cli(monkeypatch, "train", "cpu", "--task", CORRIDOR, "--collect.task", CORRIDOR, "--collect.num-instances", "32",
        "--collect.horizon", "60", "--seq-len", "30", "--run-name", "corridor", "--eval-suites", "eval",
        "--eval-instances", "4", *TINY_MODEL)  # fmt: skip
    assert "| eval |" in capsys.readouterr().out
    cli(monkeypatch, "evaluate", "--checkpoint", "runs/corridor/checkpoint.pt", "--num-instances", "4",
        "--suites", "eval", "seed=7,horizon=20")  # fmt: skip
    out = capsys.readouterr().out
    assert "| eval |" in out and "| seed=7,horizon=20 |" in out and "mean reward per step" in out


BAD_TASKS = """
import gymnasium as gym
from headless_ad import GymTask


class Half:
    name = "half"
    observation_kind = "none"

    def metric(self, rollout):
        return 0.0


def pendulum(seed):
    return gym.make("Pendulum-v1")
"""


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("examples.nothing:TASK", "cannot import 'examples.nothing' (ModuleNotFoundError"),
        ("examples.jump_corridor:NOPE", "'examples.jump_corridor' has no attribute 'NOPE'"),
        ("bad_tasks:Half", "Half does not satisfy the Task protocol: missing source_algorithm, baselines"),
        ("corridor_of_mine", "unknown task 'corridor_of_mine'"),
        (":Task", "a plug-in task is given as package.module:Attribute"),
    ],
)
def test_bad_plug_in_fails_with_one_clear_line(monkeypatch, capsys, in_tmp: Path, task: str, message: str) -> None:
    (in_tmp / "bad_tasks.py").write_text(BAD_TASKS)
    assert message in cli_error(monkeypatch, capsys, "collect", "--task", task)
    assert message in cli_error(monkeypatch, capsys, "train", "cpu", "--task", task, "--collect.task", task)


def test_missing_optional_hooks_point_to_subclassing(in_tmp: Path) -> None:
    class Plain:  # every required member, no optional hook: not a subclass of Task
        pass

    corridor = get_task(CORRIDOR)
    for name in ("name", "observation_kind", "source_algorithm", "baselines", "default_eval_suites", "metric_name",
                 "curve_labels", "episodic", "train_suite", "parse_suite", "observation_size", "make_env",
                 "make_learner", "metric", "curve"):  # fmt: skip
        setattr(Plain, name, getattr(corridor, name))
    with pytest.raises(
        ValueError,
        match=r"missing can_render, render_episodes, extra_metrics, instance_metrics, instance_curves, extra_curves "
        r"\(subclass headless_ad.Task",
    ):
        checked(Plain, "'plain'")


def test_tasks_register_from_python_and_from_entry_points(in_tmp: Path) -> None:
    corridor = get_task(CORRIDOR)
    try:
        assert register_task(corridor, "my_corridor") is get_task("my_corridor")
    finally:
        TASKS.pop("my_corridor")
    info = in_tmp / "corridor_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: corridor-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[headless_ad.tasks]\nplugged_corridor = {CORRIDOR}\n")
    assert get_task("plugged_corridor") is corridor


def test_the_adapter_refuses_an_env_without_discrete_actions(monkeypatch, capsys, in_tmp: Path) -> None:
    with pytest.raises(ValueError, match=r"task 'pendulum': the env's action space is Box\(.*\), not Discrete"):
        GymTask("pendulum", lambda seed: gym.make("Pendulum-v1"))
    (in_tmp / "pendulum_task.py").write_text(BAD_TASKS + "\nTASK = GymTask('pendulum', pendulum)\n")
    assert "not Discrete" in cli_error(monkeypatch, capsys, "collect", "--task", "pendulum_task:TASK")
    with pytest.raises(ValueError, match="q_learning needs discrete observations"):
        GymTask("cartpole", lambda seed: gym.make("CartPole-v1"), source="q_learning")


def test_the_adapter_takes_box_observations_with_linucb() -> None:
    """A contextual bandit written as a plain gymnasium env: LinUCB on flattened Box contexts."""

    class Contexts(gym.Env):
        def __init__(self, seed: int) -> None:
            self.arms = np.random.default_rng(seed).normal(size=(3, 2))
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1, 2))
            self.action_space = gym.spaces.Discrete(3)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.context = self.np_random.normal(size=(1, 2))
            return self.context, {}

        def step(self, action):
            reward = float(self.arms[action] @ self.context[0])
            self.context = self.np_random.normal(size=(1, 2))
            return self.context, reward, False, False, {}

    task = GymTask("contexts", Contexts, source="linucb", episodic=False)
    suite = task.train_suite(16, 150, 0)
    rollouts = run_baselines(task, suite, seed=0)
    assert task.observation_kind == "continuous" and task.observation_size(suite) == 2
    assert rollouts["linucb"].observations.shape == (16, 150, 2)
    assert task.metric(rollouts["linucb"]) > task.metric(rollouts["random"]) + 0.2


def corridor_histories(num: int = 24, horizon: int = 50) -> dict[str, np.ndarray]:
    task = get_task(CORRIDOR)
    rollout = run_baselines(task, task.train_suite(num, horizon, 3), seed=3)["q_learning"]
    mask = task.make_env(task.train_suite(num, horizon, 3)).action_mask
    sets = np.where(mask, np.arange(mask.shape[1]), -1)
    return {"actions": rollout.actions, "rewards": rollout.rewards, "observations": rollout.observations,
            "dones": rollout.dones, "action_sets": sets}  # fmt: skip


def test_imported_histories_train_a_model(monkeypatch, capsys, in_tmp: Path) -> None:
    np.savez("mine.npz", **corridor_histories())
    cli(monkeypatch, "import-histories", "--arrays", "mine.npz", "--out", "runs/histories/mine", "--task", CORRIDOR)
    assert "imported 24 histories of 50 steps" in capsys.readouterr().out
    train = ["train", "cpu", "--task", CORRIDOR, "--collect.task", CORRIDOR, "--collect.out", "runs/histories/mine",
             "--seq-len", "25", "--run-name", "mine", *TINY_MODEL]  # fmt: skip
    assert "pass --collect.horizon 50" in cli_error(monkeypatch, capsys, *train, "--collect.horizon", "40")
    cli(monkeypatch, *train, "--collect.horizon", "50")
    assert "using imported histories runs/histories/mine (24 histories of 50 steps)" in capsys.readouterr().out
    assert (in_tmp / "runs/mine/checkpoint.pt").is_file()
    # Collection never replaces imported histories, even when asked to overwrite.
    cli(monkeypatch, *train, "--collect.horizon", "50", "--collect.overwrite", "--run-name", "again")
    assert "using imported histories" in capsys.readouterr().out
    # A second import to the same place refuses to overwrite it.
    err = cli_error(monkeypatch, capsys, "import-histories", "--arrays", "mine.npz", "--out", "runs/histories/mine",
                    "--task", CORRIDOR)  # fmt: skip
    assert "already exists" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rewards": np.zeros((24, 49))}, "rewards has shape (24, 49), actions (24, 50): they must match"),
        ({"action_sets": np.full((24, 2), 7)}, "is not in instance 0's action set"),
        ({"observations": np.full((24, 50), 9)}, "observations[0, 0] = 9 is outside [0, 9)"),
        ({"observations": None}, "has discrete observations: give observations"),
        ({"action_mask": np.ones((24, 8), dtype=bool)}, "give exactly one of action_mask"),
        ({"dones": np.zeros((3, 50), dtype=bool)}, "dones has shape (3, 50)"),
        ({"actions": np.zeros((24, 50))}, "actions must be an (instances, steps) integer array"),
    ],
)
def test_bad_histories_fail_with_one_clear_line(monkeypatch, capsys, change: dict, message: str) -> None:
    arrays = {**corridor_histories(), **change}
    np.savez("bad.npz", **{name: value for name, value in arrays.items() if value is not None})
    err = cli_error(
        monkeypatch, capsys, "import-histories", "--arrays", "bad.npz", "--out", "store", "--task", CORRIDOR
    )
    assert message in err
    assert not Path("store").exists()


def test_histories_import_from_python_with_action_lists(in_tmp: Path) -> None:
    rng = np.random.default_rng(0)
    offered = [[0, 3], [1, 2, 4]]
    actions = np.stack([rng.choice(row, 30) for row in offered])
    import_histories("store", "bandit", actions, rng.random((2, 30)) < 0.5, action_sets=offered)
    mask = np.load("store/action_mask.npy")
    np.testing.assert_array_equal(mask, [[True, False, False, True, False], [False, True, True, False, True]])
    with pytest.raises(ValueError, match="task 'bandit' has no observations"):
        import_histories("other", "bandit", actions, np.zeros((2, 30)), action_sets=offered, observations=actions)


def test_a_users_envs_folder_joins_ours(in_tmp: Path) -> None:
    """The design fixes `envs/` at the top level; a user's own `envs/` (no __init__.py) adds to it."""
    (in_tmp / "envs").mkdir()
    (in_tmp / "envs/my_env.py").write_text("ARMS = 7\n")
    code = "import envs.my_env, envs.bandit; print(envs.my_env.ARMS, envs.bandit.BernoulliBandit.__name__)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=in_tmp, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["7", "BernoulliBandit"]


def test_a_plug_in_store_collected_in_parts_merges_and_is_reused(monkeypatch, capsys, in_tmp: Path) -> None:
    whole = ["--task", CORRIDOR, "--num-instances", "12", "--horizon", "20"]
    cli(monkeypatch, "collect", *whole, "--instances", "0", "5")
    cli(monkeypatch, "collect", *whole, "--instances", "5", "12")
    parts = sorted(str(p) for p in (in_tmp / "runs/histories").glob("*-part*"))
    cli(monkeypatch, "merge", "--parts", *parts, "--out", "merged")
    assert json.loads((in_tmp / "merged/meta.json").read_text())["task_spec"] == CORRIDOR
    cli(monkeypatch, "collect", *whole, "--out", "merged")
    assert "reusing merged (12 histories of 20 steps)" in capsys.readouterr().out


def test_suites_of_another_observation_size_are_refused(monkeypatch, capsys) -> None:
    """The model is built for the training suite's observation size (contextual bandit: its dim)."""
    args = ["train", "contextual-bandit", "--eval-suites", "dim=3,instances=4"]
    assert "--eval-suites 'dim=3,instances=4' has observation size 3, the model's is 2" in cli_error(
        monkeypatch, capsys, *args
    )
    assert "the model's is 4" in cli_error(monkeypatch, capsys, *args, "--collect.train-suite", "dim=4")
    config = PRESETS["contextual-bandit"][1]
    matching = replace_options(config, eval_suites=("dim=3",), collect=replace(config.collect, train_suite="dim=3"))
    matching.validate()


def test_the_adapter_takes_a_native_vector_env() -> None:
    """Where the user has a numpy vector env of their instances, the adapter steps it instead of
    Gymnasium's SyncVectorEnv; both give the same instances."""

    def bandit(seed: int) -> BernoulliBandit:
        return BernoulliBandit(num_arms=5, arms_seed=seed, horizon=60)

    def bandits(seeds: np.ndarray) -> BernoulliBanditVectorEnv:
        means = np.stack([bandit(int(seed)).means for seed in seeds])
        return BernoulliBanditVectorEnv(len(seeds), means=means, num_arms=5, horizon=60)

    native = GymTask("bandits", bandit, source="thompson", episodic=False, make_vector_env=bandits)
    looped = GymTask("bandits", bandit, source="thompson", episodic=False)
    suite = native.train_suite(6, 60, 0)
    assert isinstance(native.make_env(suite), BernoulliBanditVectorEnv)
    rollouts = [run_baselines(task, suite, seed=0)["thompson"] for task in (native, looped)]
    assert all(rollout.regrets is not None for rollout in rollouts)  # info["regret"] reaches the store
    np.testing.assert_allclose(
        native.make_env(suite).means, np.stack([env.unwrapped.means for env in looped.make_env(suite).envs])
    )
    with pytest.raises(ValueError, match="make_vector_env must give an env with an action_mask"):
        GymTask("x", bandit, source="ucb", make_vector_env=lambda seeds: gym.vector.SyncVectorEnv(
            [lambda: bandit(0)] * len(seeds))).make_env(suite)  # fmt: skip
