"""Command-line round trips on tiny configs, and clear errors on bad input."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from command_line import cli, cli_error
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# The module: the package exports the function `train` under the same name.
train_module = importlib.import_module("headless_ad.trainer")

TINY = [
    "--collect.num-instances", "64", "--collect.horizon", "40", "--seq-len", "40",
    "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2",
    "--batch-size", "4", "--total-steps", "6", "--warmup-steps", "2", "--log-every", "3",
    "--eval-every", "0", "--checkpoint-every", "3", "--eval-instances", "8", "--eval-suites", "all_new",
    "--threads", "1",
]  # fmt: skip


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_collect_train_evaluate_round_trip(monkeypatch: pytest.MonkeyPatch, capsys, in_tmp: Path) -> None:
    cli(monkeypatch, "collect", "--num-instances", "64", "--horizon", "40")
    store = in_tmp / "runs/histories/bandit-thompson-n64-t40-s0"
    assert (store / "meta.json").is_file()
    cli(monkeypatch, "collect", "--num-instances", "64", "--horizon", "40")
    assert "reusing" in capsys.readouterr().out
    # A store of an older collector (different histories for the same config) is never reused.
    meta = json.loads((store / "meta.json").read_text())
    (store / "meta.json").write_text(json.dumps({**meta, "collector_version": 1}))
    error = cli_error(monkeypatch, capsys, "collect", "--num-instances", "64", "--horizon", "40")
    assert "collector version 1" in error
    (store / "meta.json").write_text(json.dumps(meta))

    cli(monkeypatch, "train", "bandit", "--run-name", "tiny", *TINY, "--sample-temperature", "0.7")
    run = in_tmp / "runs/tiny"
    assert list(run.glob("events.out.tfevents.*"))
    scalars = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    # The raw measure of the model and every baseline beside the normalized score.
    for agent in ("thompson", "ucb", "random", "model_argmax", "model_sample"):
        assert f"eval/all_new/regret/{agent}" in scalars
    assert "eval/all_new/normalized_sample" in scalars and "time/train_minutes" in scalars
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == 6 and checkpoint["task"] == "bandit" and checkpoint["train_seconds"] > 0
    assert "| all_new |" in capsys.readouterr().out

    cli(monkeypatch, "evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--num-instances", "8",
        "--suites", "num_30", "arms=3-5,means=inverse,instances=5,seed=3")  # fmt: skip
    out = capsys.readouterr().out
    assert "| num_30 |" in out and "| arms=3-5,means=inverse,instances=5,seed=3 |" in out
    assert "sample temperature 0.7" in out  # the training config's, unless overridden
    assert (run / "evaluation.md").is_file()


@pytest.mark.parametrize("ema", [[], ["--ema-decay", "0.9"]], ids=["plain", "ema"])
def test_interrupted_run_resumes_to_the_same_parameters(monkeypatch: pytest.MonkeyPatch, ema: list[str]) -> None:
    cli(monkeypatch, "train", "bandit", "--run-name", "straight", *TINY, *ema)

    real_save = train_module.atomic_torch_save

    def save_then_interrupt(obj, path) -> None:
        real_save(obj, path)
        raise KeyboardInterrupt  # as if Ctrl-C hit right after the step-3 checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "atomic_torch_save", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            cli(monkeypatch, "train", "bandit", "--run-name", "split", *TINY, *ema)
    interrupted = torch.load("runs/split/checkpoint.pt", weights_only=False)
    assert interrupted["step"] == 3
    interrupted["train_seconds"] = 1000.0  # the training time before the interruption carries over
    torch.save(interrupted, "runs/split/checkpoint.pt")
    cli(monkeypatch, "train", "bandit", "--run-name", "split", *TINY, *ema, "--resume")
    straight = torch.load("runs/straight/checkpoint.pt", map_location="cpu", weights_only=False)
    split = torch.load("runs/split/checkpoint.pt", map_location="cpu", weights_only=False)
    for weights in ("model", "ema_model") if ema else ("model",):
        for name, value in straight[weights].items():
            torch.testing.assert_close(split[weights][name], value, msg=f"{weights}.{name}")
    assert 1000 < split["train_seconds"] < 1000 + straight["train_seconds"] * 20


def test_evaluation_acts_with_the_averaged_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    from headless_ad.checkpoints import model_from_checkpoint

    cli(monkeypatch, "train", "bandit", "--run-name", "ema", *TINY, "--ema-decay", "0.5")
    checkpoint = torch.load("runs/ema/checkpoint.pt", map_location="cpu", weights_only=False)
    assert checkpoint["ema_steps"] == 6
    acting = model_from_checkpoint(checkpoint, torch.device("cpu")).state_dict()
    for name, value in checkpoint["ema_model"].items():
        torch.testing.assert_close(acting[name], value)
    assert any(not torch.equal(checkpoint["model"][name], value) for name, value in checkpoint["ema_model"].items())


KEEP_BEST = ["--eval-every", "1", "--eval-selection", "sample", "--keep-best", "all_new"]


def normalized_scores(run: Path, suite: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0}).Reload()
    return [(event.step, event.value) for event in events.Scalars(f"eval/{suite}/normalized_sample")]


def test_keep_best_saves_the_evaluation_with_the_highest_score(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    cli(monkeypatch, "train", "bandit", "--run-name", "kept", *TINY, *KEEP_BEST)
    scores = normalized_scores(Path("runs/kept"), "all_new")
    assert [step for step, _ in scores] == [1, 2, 3, 4, 5, 6]
    best_step, best_score = max(scores, key=lambda point: point[1])  # the first of equal maxima
    best = torch.load("runs/kept/best.pt", weights_only=False)
    assert best["step"] == best["best"]["step"] == best_step
    assert best["best"]["measure"]["suite"] == "all_new"
    assert best["best"]["score"] == pytest.approx(best_score, abs=1e-6)
    # The last checkpoint, written after its step's evaluation, knows the best (for a resume).
    assert torch.load("runs/kept/checkpoint.pt", weights_only=False)["best"] == best["best"]
    # best.pt is a checkpoint like any other; its evaluations are named apart from checkpoint.pt's.
    cli(monkeypatch, "evaluate", "--checkpoint", "runs/kept/best.pt", "--num-instances", "4", "--suites", "num_10")
    (evaluation,) = Path("runs/kept/evaluations").glob("best.pt-*")
    assert evaluation.name.startswith(f"best.pt-step{best_step}_")
    assert f"best on all_new: step {best_step}" in capsys.readouterr().out


def test_keep_best_carries_over_a_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    cli(monkeypatch, "train", "bandit", "--run-name", "straight", *TINY, *KEEP_BEST)
    real_save = train_module.atomic_torch_save

    def save_then_interrupt(obj, path) -> None:
        real_save(obj, path)
        if path.name == "checkpoint.pt" and obj["step"] == 3:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "atomic_torch_save", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            cli(monkeypatch, "train", "bandit", "--run-name", "split", *TINY, *KEEP_BEST)
    cli(monkeypatch, "train", "bandit", "--run-name", "split", *TINY, *KEEP_BEST, "--resume")
    straight = torch.load("runs/straight/best.pt", weights_only=False)
    split = torch.load("runs/split/best.pt", weights_only=False)
    assert split["best"] == straight["best"]
    for name, value in straight["model"].items():
        torch.testing.assert_close(split["model"][name], value, msg=name)


def test_default_run_name_is_new_for_every_start(monkeypatch, in_tmp: Path) -> None:
    cli(monkeypatch, "train", "bandit", *TINY, "--seed", "3")
    (run,) = (in_tmp / "runs").glob("bandit-s3-*")
    assert (run / "checkpoint.pt").is_file()
    assert json.loads((run / "config.json").read_text())["run_name"] == run.name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "bandit", "--seq-len", "400"], "--seq-len 400 is longer than the histories (--collect.horizon 300)"),
        (["train", "bandit", "--total-steps", "10"], "--warmup-steps 100 must be in [0, --total-steps 10]"),
        (["train", "bandt", "--total-steps", "10"], "unknown preset 'bandt' (did you mean bandit?)"),
        (["train", "--total-steps", "10"], "train needs a preset first"),
        (["train", "darkroom", "--episode-stride", "0"], "--episode-stride must be >= 1"),
        (["train", "bandit", "--scoring.temperature", "0"], "--scoring.temperature must be > 0"),
        (["train", "bandit", "--ema-decay", "1"], "--ema-decay must be in [0, 1)"),
        (["train", "bandit", "--eval-selection", "sample", "sample"], "--eval-selection needs argmax, sample or both"),
        (["train", "bandit", "--sample-temperature", "0"], "--sample-temperature must be > 0"),
        (["train", "bandit", "--keep-best", "num_30"], "--keep-best 'num_30' is not one of --eval-suites (all_new"),
        (["train", "bandit", "--keep-best", "all_new", "--eval-every", "0"], "--keep-best needs --eval-every > 0"),
        (["evaluate", "--checkpoint", "x.pt", "--sample-temperature", "-1"], "--sample-temperature must be > 0"),
        (["train", "bandit", "--sample-min-p", "1"], "--sample-min-p must be in [0, 1), got 1.0"),
        (["evaluate", "--checkpoint", "x.pt", "--sample-min-p", "-0.1"], "--sample-min-p must be in [0, 1), got -0.1"),
        (
            ["train", "darkroom", "--anneal-episodes", "50", "--final-sample-temperature", "0"],
            "--anneal-episodes needs a --final-sample-temperature > 0",
        ),
        (
            ["train", "bandit", "--anneal-episodes", "50", "--final-sample-temperature", "0.3"],
            "a bandit history is one long episode",
        ),
        (["evaluate", "--checkpoint", "x.pt", "--anneal-episodes", "-1"], "--anneal-episodes must be >= 0"),
        (["evaluate", "--checkpoint", "x.pt", "--anneal-steps", "-1"], "--anneal-steps must be >= 0"),
        (
            ["train", "bandit", "--anneal-steps", "30", "--final-sample-temperature", "0"],
            "--anneal-steps needs a --final-sample-temperature > 0",
        ),
        (
            ["train", "bandit", "--anneal-episodes", "50", "--anneal-steps", "30", "--final-sample-temperature", "0.3"],
            "--anneal-episodes and --anneal-steps exclude each other",
        ),
        (
            ["train", "darkroom", "--anneal-steps", "300", "--final-sample-temperature", "0.3"],
            "--anneal-episodes and --anneal-steps exclude each other",
        ),
        (["train", "bandit", "--collect.task", "pong", "--task", "pong"], "unknown task 'pong'"),
        (["train", "bandit", "--eval-suites", "arms=1"], "at least 2 arms"),
        (["collect", "--task", "pong"], "unknown task 'pong'"),
        (["collect", "--source", "oracle"], "unknown bandit learner 'oracle'"),
        (["collect", "--threads", "-1"], "--threads must be >= 0"),
        (["train", "darkroom", "--collect.train-suite", "min_actions=60"], "min_actions must be in [0, 50]"),
        (["collect", "--train-suite", "min_actions=5"], "unknown key 'min_actions' in --collect.train-suite"),
        (["collect", "--train-suite", "arms=x"], "bad value 'x' for 'arms'"),
        (["train", "bandit", "--collect.threads", "-1"], "--collect.threads must be >= 0"),
        (["train", "bandit", "--resume", "--run-name", "nothing"], "no checkpoint at runs/nothing"),
        (["train", "bandit", "--resume"], "--resume needs the --run-name of the run to continue"),
        (["evaluate", "--checkpoint", "missing.pt"], "missing.pt: no checkpoint here"),
        (["train", "bandit", "--model.action-memory", "-1"], "--model.action-memory must be >= 0, got -1"),
        (
            ["train", "bandit", "--model.head", "indexed", "--model.action-memory", "8"],
            "--model.action-memory needs the headless head",
        ),
    ],
)
def test_bad_input_fails_with_one_clear_line(monkeypatch, capsys, args: list[str], message: str) -> None:
    err = cli_error(monkeypatch, capsys, *args)
    assert message in err and len(err.strip().splitlines()) == 1


def test_compile_without_a_cpp_compiler_fails_before_any_work(monkeypatch, capsys, in_tmp: Path) -> None:
    import torch._inductor.config as inductor

    with inductor.patch({"cpp.cxx": ("no-such-cxx-compiler",)}):
        error = cli_error(monkeypatch, capsys, "train", "bandit", *TINY, "--device", "cpu", "--compile")
    assert "--compile on the CPU needs a C++ compiler" in error and "without --compile" in error
    assert not (in_tmp / "runs").exists()


def test_unknown_preset_is_refused(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert "bandit-huge" in cli_error(monkeypatch, capsys, "train", "bandit-huge")


def test_every_preset_is_a_valid_config() -> None:
    from headless_ad.presets import PRESETS

    for _, config in PRESETS.values():
        config.validate()


def test_corrupt_or_foreign_checkpoint_is_named(monkeypatch: pytest.MonkeyPatch, capsys, in_tmp: Path) -> None:
    (in_tmp / "corrupt.pt").write_bytes(b"not a checkpoint")
    assert "corrupt.pt: not a readable checkpoint" in cli_error(
        monkeypatch, capsys, "evaluate", "--checkpoint", "corrupt.pt"
    )
    cli(monkeypatch, "train", "bandit", "--run-name", "tiny", *TINY)
    checkpoint = torch.load("runs/tiny/checkpoint.pt", weights_only=False)
    torch.save({**checkpoint, "task": "darkroom"}, "foreign.pt")
    capsys.readouterr()
    (in_tmp / "runs/tiny/checkpoint.pt").write_bytes(Path("foreign.pt").read_bytes())
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "tiny", *TINY, "--resume")
    assert "a checkpoint of task 'darkroom', not 'bandit'" in err


def test_corrupt_history_store_is_named(monkeypatch: pytest.MonkeyPatch, capsys, in_tmp: Path) -> None:
    cli(monkeypatch, "collect", "--num-instances", "64", "--horizon", "40")
    (in_tmp / "runs/histories/bandit-thompson-n64-t40-s0/actions.npy").write_bytes(b"junk")
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "x", *TINY)
    assert "actions.npy: unreadable" in err


def test_darkroom_round_trip_with_sliding_context(monkeypatch: pytest.MonkeyPatch, capsys, in_tmp: Path) -> None:
    """Histories longer than the window: training samples episode-strided windows, evaluation slides the context."""
    args = ["--collect.num-instances", "32", "--collect.horizon", "400", "--seq-len", "24",
            "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2", "--batch-size", "4",
            "--total-steps", "4", "--warmup-steps", "1", "--eval-every", "0", "--eval-instances", "4",
            "--eval-suites", "test_goals/test", "--threads", "1", "--eval-horizon", "150",
            "--eval-selection", "sample"]  # fmt: skip
    cli(monkeypatch, "train", "darkroom", "--run-name", "dark", *args)
    out = capsys.readouterr().out
    assert "| model_sample | normalized sample |" in out and "argmax" not in out  # greedy play not rolled out
    [final] = (in_tmp / "runs/dark/evaluations").iterdir()
    assert "_sample_" in final.name and "argmax" not in final.name
    # The context slides, so the model acts for longer than its histories: by default as in training.
    cli(monkeypatch, "evaluate", "--checkpoint", "runs/dark/checkpoint.pt", "--num-instances", "4",
        "--suites", "test_goals/test")  # fmt: skip
    out = capsys.readouterr().out
    assert "4 instances per suite, 150 steps" in out
    assert "sample temperature 0.8 -> 0.3 over 200 episodes" in out  # the preset's schedule, saved with it
    store = (
        in_tmp / "runs/histories/darkroom-q_learning-n32-t400-s0-min_actions25"
    )  # the preset: rooms with 25-50 actions
    assert np.load(store / "observations.npy").max() < 81
    cli(monkeypatch, "evaluate", "--checkpoint", "runs/dark/checkpoint.pt", "--num-instances", "4",
        "--suites", "train_goals/all", "--horizon", "90")  # fmt: skip
    out = capsys.readouterr().out
    assert "| train_goals/all |" in out and "| train_goals/all | model_sample | test actions tried |" in out


def test_collection_split_by_instance_range_merges_into_the_whole_store(monkeypatch, capsys, in_tmp: Path) -> None:
    whole = ["--num-instances", "50", "--horizon", "30"]
    cli(monkeypatch, "collect", *whole, "--instances", "0", "20")
    cli(monkeypatch, "collect", *whole, "--instances", "20", "50")
    parts = sorted(str(p) for p in (in_tmp / "runs/histories").glob("*-part*"))
    assert len(parts) == 2
    err = cli_error(monkeypatch, capsys, "merge", "--parts", parts[1], "--out", "merged")
    assert "must start at 0" in err
    cli(monkeypatch, "merge", "--parts", *parts, "--out", "merged")
    cli(monkeypatch, "collect", *whole, "--out", "merged")  # the merged store is the whole set's
    assert "reusing merged (50 histories of 30 steps)" in capsys.readouterr().out
    cli(monkeypatch, "collect", *whole)
    merged = np.load("merged/action_mask.npy")
    np.testing.assert_array_equal(merged, np.load("runs/histories/bandit-thompson-n50-t30-s0/action_mask.npy"))
    assert np.load("merged/actions.npy").shape == (50, 30)
