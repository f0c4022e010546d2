"""Data-parallel training: 2 CPU processes (gloo) end with the parameters of 1 process on the
same global batches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

TINY = [
    "--collect.num-instances", "64", "--collect.horizon", "40", "--seq-len", "40",
    "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2",
    "--batch-size", "4", "--total-steps", "4", "--warmup-steps", "1", "--log-every", "2",
    "--eval-every", "0", "--checkpoint-every", "2", "--eval-instances", "4", "--eval-suites", "all_new",
    "--threads", "1", "--precision", "fp32", "--device", "cpu",  # gloo: two ranks cannot share one GPU under NCCL
]  # fmt: skip


def run(args: list[str], cwd: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]


def free_port() -> int:
    """A port nobody listens on now, so that parallel test runs do not collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    run(["-m", "headless_ad", "train", "bandit", "--run-name", "single", *TINY], tmp_path)
    torchrun = ["-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}"]
    run([*torchrun, "-m", "headless_ad", "train", "bandit", "--run-name", "ddp", *TINY], tmp_path)
    single = torch.load(tmp_path / "runs/single/checkpoint.pt", weights_only=False)
    ddp = torch.load(tmp_path / "runs/ddp/checkpoint.pt", weights_only=False)
    assert single["step"] == ddp["step"] == 4
    for name, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, atol=1e-5, rtol=1e-4, msg=name)
    assert len(list((tmp_path / "runs/ddp").glob("events.out.tfevents.*"))) == 1  # rank 0 alone logs
