"""Fault injection: concurrent writers, kill -9 at chosen points, injected NaN and full disks,
paths that cannot be written, escaped run names, corrupt stores and checkpoints. Each case must
end in a correct result or one clear line, and never lose what existed before the command."""

from __future__ import annotations

import errno
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from command_line import cli, cli_error
from flat_configs import flat_form

from headless_ad import load_agent
from headless_ad.histories import HistoryStoreError, load_store, write_store

train_module = importlib.import_module("headless_ad.trainer")  # the package exports a function `train`
ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--collect.num-instances", "64", "--collect.horizon", "40", "--seq-len", "40",
    "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2",
    "--batch-size", "4", "--total-steps", "6", "--warmup-steps", "2", "--log-every", "3",
    "--eval-every", "0", "--checkpoint-every", "3", "--eval-instances", "4", "--eval-suites", "all_new",
    "--threads", "1",
]  # fmt: skip
STORE = ["--num-instances", "32", "--horizon", "20"]


def python(code: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """A separate process running `code` (with this checkout's package), to kill or race with."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(process: subprocess.Popen[str], line: str) -> None:
    """Read the subprocess's output up to `line` (it prints it when it reaches the injected fault)."""
    for got in process.stdout:
        if got.strip() == line:
            return
    process.kill()
    raise AssertionError(f"the subprocess ended before printing {line!r}: {process.communicate()[1]}")


def kill(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL: no handler, no cleanup, as a crash or an OOM kill
    process.communicate()
    assert process.returncode == -9


def leftovers(folder: Path) -> list[str]:
    """Hidden entries a writer left (lock files excepted: they are meant to stay)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".locks")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/ holding `tiny`, a run of 6 steps stopped after its step-3 checkpoint, and its store."""
    folder = tmp_path_factory.mktemp("interrupted")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        real_save = train_module.atomic_torch_save

        def save_then_interrupt(obj, path) -> None:
            real_save(obj, path)
            raise KeyboardInterrupt

        patch.setattr(train_module, "atomic_torch_save", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            cli(patch, "train", "bandit", "--run-name", "tiny", *TINY)
    return folder / "runs"


@pytest.fixture
def runs(interrupted_run: Path, in_tmp: Path) -> Path:
    shutil.copytree(interrupted_run, in_tmp / "runs")
    return in_tmp / "runs"


# 1, 11: two collectors of one store; a collector killed while writing.
COLLECT_BLOCKED_WRITING = """
import sys
from pathlib import Path
import numpy as np
from headless_ad.collect import CollectConfig, collect
real_save, calls = np.save, []
def save(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # one array written, the store half done
        print("writing", flush=True)
        sys.stdin.read()
    real_save(*args, **kwargs)
np.save = save
collect(CollectConfig(num_instances=32, horizon=20, out=Path("store"), seed=0))
"""


def test_second_collector_fails_at_once_and_a_killed_one_leaves_no_store(monkeypatch, capsys, in_tmp) -> None:
    holder = python(COLLECT_BLOCKED_WRITING, in_tmp)
    wait_for(holder, "writing")
    err = cli_error(monkeypatch, capsys, "collect", *STORE, "--seed", "1", "--out", "store")
    assert f"store: this history store is being written by process {holder.pid}" in err
    kill(holder)
    assert leftovers(in_tmp) == [f".store.tmp-{holder.pid}"]
    with pytest.raises(HistoryStoreError, match="no history store here"):
        load_store(in_tmp / "store")
    cli(monkeypatch, "collect", *STORE, "--seed", "1", "--out", "store")  # the lock died with its holder
    assert f"removed .store.tmp-{holder.pid}, left by a killed writer" in capsys.readouterr().out
    assert load_store(in_tmp / "store").meta["seed"] == 1
    assert leftovers(in_tmp) == []


def test_a_store_that_appears_during_a_write_is_never_replaced(monkeypatch, in_tmp) -> None:
    arrays = {"actions": np.zeros((2, 3), np.int16), "rewards": np.zeros((2, 3), np.float32)}
    arrays["action_mask"] = np.ones((2, 2), bool)
    real_save, raced = np.save, []

    def save_while_another_writer_finishes(*args, **kwargs) -> None:
        if not raced:
            raced.append(1)
            write_store(in_tmp / "elsewhere", {"writer": "other"}, arrays)  # another process's store
            os.rename(in_tmp / "elsewhere", in_tmp / "store")
        real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", save_while_another_writer_finishes)
    with pytest.raises(FileExistsError, match="appeared while this store was written; it is left as it is"):
        write_store(in_tmp / "store", {"writer": "this"}, arrays)
    assert load_store(in_tmp / "store").meta["writer"] == "other"
    assert leftovers(in_tmp) == []


def test_train_checks_the_store_it_loads_against_its_config(monkeypatch, capsys, runs) -> None:
    store = runs / "histories/bandit-thompson-n64-t40-s0"
    meta = json.loads((store / "meta.json").read_text())
    (store / "meta.json").write_text(json.dumps({**meta, "seed": 5}))
    monkeypatch.setattr(train_module, "collect", lambda config: None)  # as if swapped after collect's check
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "other", *TINY)
    assert f"{store.relative_to(runs.parent)} holds histories of another config (seed differ)" in err


# 2: --out pointing at something that is not a store.
def test_out_never_replaces_what_is_not_a_history_store(monkeypatch, capsys, runs, in_tmp) -> None:
    before = snapshot(runs / "tiny")
    for overwrite in ([], ["--overwrite"]):
        err = cli_error(monkeypatch, capsys, "collect", *STORE, "--out", "runs/tiny", *overwrite)
        assert "runs/tiny: not a history store (it holds checkpoint.pt, config.json, events" in err
        assert "pass --overwrite" not in err
    err = cli_error(monkeypatch, capsys, "merge", "--parts", "a", "b", "--out", "runs/tiny", "--overwrite")
    assert "runs/tiny: not a history store" in err
    assert snapshot(runs / "tiny") == before
    (in_tmp / "notes.txt").write_text("mine")
    err = cli_error(monkeypatch, capsys, "collect", *STORE, "--out", "notes.txt", "--overwrite")
    assert "notes.txt: a file, not a history store" in err and (in_tmp / "notes.txt").read_text() == "mine"
    # A folder of store arrays without meta.json is an unfinished store: the one case for the hint.
    (in_tmp / "half").mkdir()
    np.save(in_tmp / "half/actions.npy", np.zeros((2, 2), np.int16))
    err = cli_error(monkeypatch, capsys, "collect", *STORE, "--out", "half")
    assert "half/meta.json: missing" in err and "pass --overwrite" in err
    cli(monkeypatch, "collect", *STORE, "--out", "half", "--overwrite")
    assert load_store(in_tmp / "half").num_instances == 32
    # Nor does a run go into a store.
    cli(monkeypatch, "collect", *STORE, "--out", "runs/store")
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "store", *TINY)
    assert "runs/store is a history store, not a run" in err


def test_a_new_run_never_writes_over_an_earlier_start(monkeypatch, capsys, runs) -> None:
    (runs / "tiny/checkpoint.pt").unlink()  # a start stopped before its first checkpoint
    before = snapshot(runs / "tiny")
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "tiny", *TINY)
    assert "runs/tiny holds the outputs of an earlier start (config.json, events" in err
    assert snapshot(runs / "tiny") == before


# 3, 11: a kill at each point of --overwrite leaves a loadable store, and the next run tidies up.
OVERWRITE_KILLED = """
import os, shutil, signal, sys
from pathlib import Path
from headless_ad import histories
from headless_ad.collect import CollectConfig, collect
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
point = sys.argv[1]
if point == "before_swap":  # the new store complete under its temporary name
    histories._install = die
elif point == "after_swap":  # swapped; the old store, now under the temporary name, not yet removed
    shutil.rmtree = die
elif point == "set_aside":  # no atomic exchange: old store renamed aside, new one not yet in place
    histories._exchange = lambda first, second: False
    real_rename, renames = os.rename, []
    def rename(*args):
        renames.append(args)
        if len(renames) == 2:
            die()
        real_rename(*args)
    os.rename = rename
collect(CollectConfig(num_instances=32, horizon=20, out=Path(point), seed=1, overwrite=True))
"""


def test_overwrite_killed_at_any_point_leaves_the_old_or_the_new_store(monkeypatch, capsys, in_tmp) -> None:
    points = {"before_swap": 0, "after_swap": 1, "set_aside": 0}  # the seed of the store left in place
    for point in points:
        cli(monkeypatch, "collect", *STORE, "--seed", "0", "--out", point)
    killed = [python(OVERWRITE_KILLED, in_tmp, point) for point in points]
    for process in killed:
        process.communicate()
        assert process.returncode == -9, process.stderr
    assert not (in_tmp / "set_aside").exists()  # only an atomic exchange avoids this moment
    assert any(name.startswith(".set_aside.old-") for name in leftovers(in_tmp))
    capsys.readouterr()
    for point, seed in points.items():
        cli(monkeypatch, "collect", *STORE, "--seed", str(seed), "--out", point)
        assert load_store(in_tmp / point).meta["seed"] == seed
    out = capsys.readouterr().out
    assert "restored set_aside from .set_aside.old-" in out
    assert leftovers(in_tmp) == []


# 4, 5: divergence and the options that cause it.
def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(monkeypatch, capsys) -> None:
    real_loss, calls = train_module.headless_loss, []

    def nan_at_step_5(*args, **kwargs):
        loss, logits = real_loss(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 5 else loss), logits

    monkeypatch.setattr(train_module, "headless_loss", nan_at_step_5)
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "nan", *TINY)
    assert "training diverged at step 5: the loss is nan" in err
    assert "runs/nan/checkpoint.pt keeps step 3" in err and "--learning-rate" in err
    checkpoint = torch.load("runs/nan/checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == 3 and all(torch.isfinite(v).all() for v in checkpoint["model"].values())


def test_a_checkpoint_with_non_finite_weights_is_never_written(monkeypatch, capsys) -> None:
    real_clip, calls = torch.nn.utils.clip_grad_norm_, []

    def poison_step_6(parameters, max_norm):  # finite loss and norm, but NaN reaches the weights
        parameters = list(parameters)
        norm = real_clip(parameters, max_norm)
        calls.append(1)
        if len(calls) == 6:
            parameters[0].grad.fill_(float("nan"))
        return norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", poison_step_6)
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "poisoned", *TINY)
    assert "training diverged at step 6: non-finite weights" in err and "keeps step 3" in err
    assert torch.load("runs/poisoned/checkpoint.pt", weights_only=False)["step"] == 3


def test_evaluate_refuses_non_finite_weights(monkeypatch, capsys, runs) -> None:
    checkpoint = torch.load(runs / "tiny/checkpoint.pt", weights_only=False)
    for value in checkpoint["model"].values():
        value.fill_(float("nan"))
    torch.save(checkpoint, runs / "tiny/checkpoint.pt")
    before = snapshot(runs / "tiny")
    err = cli_error(monkeypatch, capsys, "evaluate", "--checkpoint", "runs/tiny/checkpoint.pt", "--selection", "argmax")
    assert "runs/tiny/checkpoint.pt: non-finite weights" in err
    assert snapshot(runs / "tiny") == before  # no table written


# 6: run names stay inside runs/.
@pytest.mark.parametrize("name", ["../escaped", "..", ".", "histories", "a/b", "/absolute", ".hidden"])
def test_run_names_are_confined_to_runs(monkeypatch, capsys, in_tmp, name: str) -> None:
    name = str(in_tmp / "absolute") if name == "/absolute" else name
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", name, *TINY)
    assert f"--run-name {name!r}" in err
    assert list(in_tmp.iterdir()) == []  # nothing written anywhere


# 7, 11: two trainings of one run; a training killed while saving.
TRAIN_BLOCKED_SAVING = """
import sys
import torch
from headless_ad.__main__ import main
real_save, calls = torch.save, []
def save(obj, file, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # the step-6 checkpoint, half written
        open(file, "wb").write(b"half a checkpoint")
        print("saving", flush=True)
        sys.stdin.read()
    real_save(obj, file, *args, **kwargs)
torch.save = save
sys.argv = ["headless_ad", "train", "bandit", "--run-name", "tiny", *sys.argv[1:]]
main()
"""


def test_second_training_of_a_run_fails_at_once_and_a_kill_mid_save_keeps_the_checkpoint(
    monkeypatch, capsys, in_tmp
) -> None:
    holder = python(TRAIN_BLOCKED_SAVING, in_tmp, *TINY)
    wait_for(holder, "saving")
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "tiny", *TINY, "--resume")
    assert f"runs/tiny: this run is being written by process {holder.pid}" in err
    kill(holder)
    run = in_tmp / "runs/tiny"
    assert leftovers(run) == [f".checkpoint.pt.tmp-{holder.pid}"]
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 3
    cli(monkeypatch, "train", "bandit", "--run-name", "tiny", *TINY, "--resume")
    assert f"removed runs/tiny/.checkpoint.pt.tmp-{holder.pid}, left by a killed writer" in capsys.readouterr().out
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 6
    assert leftovers(run) == []


# 8: a full disk while writing outputs.
def test_a_full_disk_leaves_the_previous_outputs_whole(monkeypatch, capsys, runs) -> None:
    evaluate = ["evaluate", "--checkpoint", "runs/tiny/checkpoint.pt", "--num-instances", "4", "--suites", "all_new"]
    cli(monkeypatch, *evaluate)
    before = snapshot(runs / "tiny")
    assert any(name.startswith("evaluation") for name in before)

    def full_disk(self, data, *args, **kwargs):  # part of the text reaches the disk, then ENOSPC
        with open(self, "w") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", full_disk)
        patch.setattr(np, "savez", lambda file, **arrays: full_disk(Path(file.name), "x" * 100))
        err = cli_error(monkeypatch, capsys, *evaluate, "--seed", "2")
    assert "No space left on device" in err
    assert snapshot(runs / "tiny") == before and leftovers(runs / "tiny") == []

    # A store: the old one stays whole when writing the new one fails.
    store = runs / "histories/bandit-thompson-n64-t40-s0"
    before = snapshot(store)
    with monkeypatch.context() as patch:
        patch.setattr(np, "save", lambda file, array: full_disk(Path(file.name), "x" * 100))
        args = ["collect", "--num-instances", "64", "--horizon", "40", "--overwrite"]
        assert "No space left on device" in cli_error(monkeypatch, capsys, *args)
    assert snapshot(store) == before and leftovers(store.parent) == []


# 9: destinations that cannot be written fail before the work.
def test_unwritable_destinations_fail_before_any_work(monkeypatch, capsys, in_tmp) -> None:
    (in_tmp / "runs").write_text("a file where the runs folder should be")
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "x", *TINY)
    assert "runs/x: cannot write run outputs here" in err
    assert "collected" not in capsys.readouterr().out
    err = cli_error(monkeypatch, capsys, "collect", *STORE, "--out", "runs/store")
    assert "runs: cannot write history stores here" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_run_folder_fails_evaluate_before_the_work(monkeypatch, capsys, runs) -> None:
    (runs / "tiny").chmod(0o555)
    try:
        err = cli_error(monkeypatch, capsys, "evaluate", "--checkpoint", "runs/tiny/checkpoint.pt")
    finally:
        (runs / "tiny").chmod(0o755)
    assert "runs/tiny: cannot write evaluation results here" in err


# 10: --resume applies a change it can honour and refuses one it cannot.
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--learning-rate", "0.1"], "(--learning-rate 0.003 -> 0.1)"),
        (["--total-steps", "2"], "--total-steps 2 is below the step of runs/tiny/checkpoint.pt (3)"),
        (["--total-steps", "12"], "(--total-steps 6 -> 12)"),
        (["--batch-size", "8", "--seed", "3"], "(--seed 0 -> 3; --batch-size 4 -> 8)"),
        (["--collect.seed", "1"], "--collect.seed 0 -> 1"),
    ],
)
def test_resume_refuses_changes_it_cannot_honour(monkeypatch, capsys, runs, change, message) -> None:
    before = snapshot(runs / "tiny")
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "tiny", *TINY, "--resume", *change)
    assert message in err
    assert snapshot(runs / "tiny") == before


SAFE_CHANGES = ["--log-every", "1", "--eval-every", "2"]


def test_resume_applies_and_records_safe_changes(monkeypatch, capsys, runs) -> None:
    cli(monkeypatch, "train", "bandit", "--run-name", "tiny", *TINY, "--resume", *SAFE_CHANGES)
    out = capsys.readouterr().out
    assert "resuming with changed --eval-every 0 -> 2; --log-every 3 -> 1 (recorded in config.json)" in out
    assert "step 4/6" in out and "step 4: in-context evaluation" in out  # applied, not only recorded
    assert json.loads((runs / "tiny/config.json").read_text())["evaluation"]["eval_every"] == 2
    checkpoint = torch.load(runs / "tiny/checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == 6 and checkpoint["config"]["runtime"]["log_every"] == 1
    cli(monkeypatch, "train", "bandit", "--run-name", "tiny", *TINY, "--resume", *SAFE_CHANGES)
    assert "already at step 6 of 6: nothing to train" in capsys.readouterr().out


def test_evaluate_anneals_a_bandit_over_its_steps(monkeypatch, capsys, runs) -> None:
    base = ["evaluate", "--checkpoint", "runs/tiny/checkpoint.pt", "--num-instances", "2", "--suites", "num_10"]
    cli(monkeypatch, *base, "--selection", "sample", "--anneal-steps", "20", "--final-sample-temperature", "0.3")
    assert "40 steps, seed 1, sample temperature 1 -> 0.3 over 20 steps, min-p 0.2" in capsys.readouterr().out
    assert list((runs / "tiny/evaluations").glob("*_t1to0.3over20stminp0.2_*"))
    err = cli_error(
        monkeypatch, capsys, *base, "--anneal-episodes", "5", "--anneal-steps", "0", "--final-sample-temperature", "0.3"
    )
    assert "a bandit history is one long episode" in err


def test_a_run_saved_with_a_flat_config_evaluates_and_resumes(monkeypatch, capsys, runs) -> None:
    """Runs written before the options had sections hold a flat config (config.json and checkpoint)."""
    checkpoint = torch.load(runs / "tiny/checkpoint.pt", weights_only=False)
    checkpoint["config"] = flat_form(checkpoint["config"])
    assert checkpoint["config"]["sample_min_p"] == 0.2  # the bandit preset's, not the default 0
    torch.save(checkpoint, runs / "tiny/checkpoint.pt")
    (runs / "tiny/config.json").write_text(json.dumps(flat_form(json.loads((runs / "tiny/config.json").read_text()))))
    agent = load_agent(runs / "tiny/checkpoint.pt", device="cpu")
    assert agent.sample_temperature.describe() == "1, min-p 0.2"
    capsys.readouterr()
    evaluate = ["evaluate", "--checkpoint", "runs/tiny/checkpoint.pt", "--num-instances", "2", "--suites", "num_10"]
    cli(monkeypatch, *evaluate)
    out = capsys.readouterr().out
    assert "(step 3), 2 instances per suite, 40 steps, seed 1, sample temperature 1, min-p 0.2" in out
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "tiny", *TINY, "--resume", "--seq-len", "20")
    assert "(--seq-len 40 -> 20)" in err
    cli(monkeypatch, "train", "bandit", "--run-name", "tiny", *TINY, "--resume", *SAFE_CHANGES)
    assert "resuming with changed --eval-every 0 -> 2; --log-every 3 -> 1" in capsys.readouterr().out
    assert json.loads((runs / "tiny/config.json").read_text())["evaluation"]["eval_every"] == 2


# 12: corrupt checkpoints and stores, and bad values, in one line.
@pytest.mark.parametrize("part", ["optimizer", "scheduler", "torch_rng", "sampler_rng"])
def test_resume_names_missing_training_state(monkeypatch, capsys, runs, part: str) -> None:
    checkpoint = torch.load(runs / "tiny/checkpoint.pt", weights_only=False)
    del checkpoint[part]
    torch.save(checkpoint, runs / "tiny/checkpoint.pt")
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "tiny", *TINY, "--resume")
    assert f"runs/tiny/checkpoint.pt: holds no {part} state, so training cannot resume" in err


def test_resume_names_garbage_training_state(monkeypatch, capsys, runs) -> None:
    checkpoint = torch.load(runs / "tiny/checkpoint.pt", weights_only=False)
    checkpoint["optimizer"] = {"state": {}, "param_groups": []}
    torch.save(checkpoint, runs / "tiny/checkpoint.pt")
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "tiny", *TINY, "--resume")
    assert "runs/tiny/checkpoint.pt: cannot resume from its training state (ValueError" in err


@pytest.mark.parametrize(
    ("array", "garbage", "message"),
    [
        ("actions", lambda a: np.full_like(a, 30), "actions.npy: history 0 takes action 30 at step 0"),
        ("actions", lambda a: a.astype(np.float32), "actions.npy: a 2-d float32 array"),
        ("rewards", lambda a: np.where(np.arange(a.shape[1]) == 7, np.nan, a), "rewards.npy: non-finite values"),
        ("action_mask", lambda a: a[:, :, None], "action_mask.npy: a 3-d bool array"),
        ("dones", lambda a: a[:, :5], "dones.npy: shape (64, 5) does not match actions (64, 40)"),
    ],
)
def test_garbage_store_contents_are_named(monkeypatch, capsys, runs, array, garbage, message) -> None:
    file = runs / f"histories/bandit-thompson-n64-t40-s0/{array}.npy"
    np.save(file, garbage(np.load(file)))
    err = cli_error(monkeypatch, capsys, "train", "bandit", "--run-name", "new", *TINY)
    assert message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "bandit", "--learning-rate", "inf"], "--learning-rate must be finite"),
        (["train", "bandit", "--learning-rate", "nan"], "--learning-rate must be > 0"),
        (["train", "bandit", "--grad-clip", "-1"], "--grad-clip must be finite and > 0"),
        (["train", "bandit", "--grad-clip", "0"], "--grad-clip must be finite and > 0"),
        (["train", "bandit", "--grad-clip", "nan"], "--grad-clip must be finite and > 0"),
        (["train", "bandit", "--threads", "-1"], "--threads must be >= 0"),
        (["evaluate", "--checkpoint", "x.pt", "--threads", "-1"], "--threads must be >= 0"),
        (["train", "bandit", "--sample-temperature", "nan"], "--sample-temperature must be > 0, got nan"),
        (
            ["train", "darkroom", "--anneal-episodes", "5", "--final-sample-temperature", "inf"],
            "--final-sample-temperature > 0, got inf",
        ),
        (["evaluate", "--checkpoint", "x.pt", "--sample-temperature", "nan"], "--sample-temperature must be finite"),
        (["train", "bandit", "--eval-suites", "instances=-1"], "suite spec 'instances=-1': instances=-1 must be >= 1"),
        (["train", "bandit", "--eval-suites", "arms=5,seed=-2"], "suite spec 'arms=5,seed=-2': seed=-2 must be >= 0"),
        (["train", "bandit", "--eval-suites", "arms=9-3"], "suite spec 'arms=9-3': max_arms=3 is below min_arms=9"),
    ],
)
def test_bad_values_fail_in_one_line(monkeypatch, capsys, in_tmp, args: list[str], message: str) -> None:
    assert message in cli_error(monkeypatch, capsys, *args)
    assert list(in_tmp.iterdir()) == []
