"""Running the command line inside a test, as a user would from a shell."""

from __future__ import annotations

import sys

import pytest

from headless_ad.__main__ import main


def cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["headless_ad", *args])
    main()


def cli_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The error a command ends with: exactly one line, exit status 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli(monkeypatch, *args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err
