"""Progress bars on a terminal, plain log lines in a file."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

TINY = [
    "--collect.num-instances", "32", "--collect.horizon", "20", "--seq-len", "20",
    "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2",
    "--batch-size", "4", "--total-steps", "4", "--warmup-steps", "1", "--log-every", "2",
    "--eval-every", "0", "--eval-instances", "4", "--eval-suites", "all_new", "--threads", "1",
]  # fmt: skip


def test_logs_written_to_files_hold_no_progress_bars(tmp_path: Path) -> None:
    stdout, stderr = tmp_path / "out.log", tmp_path / "err.log"
    with open(stdout, "w") as out, open(stderr, "w") as err:
        subprocess.run(
            [sys.executable, "-m", "headless_ad", "train", "bandit", "--run-name", "logged", *TINY],
            cwd=tmp_path, stdout=out, stderr=err, check=True, timeout=120,
        )  # fmt: skip
    text = stdout.read_text() + stderr.read_text()
    assert "\r" not in text  # no bar redraws
    assert "step 2/4 loss" in text and "step 4/4 loss" in text
    assert "checkpoint runs/logged/checkpoint.pt" in text


def test_a_terminal_gets_a_bar_with_elapsed_time_and_eta(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # a 100-column terminal
    process = subprocess.Popen(
        [sys.executable, "-m", "headless_ad", "train", "bandit", "--run-name", "shown", *TINY],
        cwd=tmp_path, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=120) == 0
    text = b"".join(chunks).decode(errors="replace")
    # tqdm's "shown:  50%|####    | 2/4 [00:01<00:01, 1.9step/s]"
    assert re.search(r"shown: +\d+%\|.*\[\d\d:\d\d<", text)
    assert "step 2/4 loss" not in text  # the bar replaces the log lines
