"""Progress bars with elapsed time and ETA on a terminal; silent when stderr is a file or a pipe,
where the program's own log lines are the record (a bar's carriage returns would garble them)."""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(total: int, description: str, unit: str = "step", initial: int = 0) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        desc=description,
        unit=unit,
        unit_scale=total >= 100_000,  # 12.3M env-steps, but 700/7000 training steps
        dynamic_ncols=True,
        disable=None,  # None: off unless stderr is a terminal
        leave=False,
    )
