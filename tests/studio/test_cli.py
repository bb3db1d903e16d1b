"""`muselab studio` refuses unsafe or impossible settings with one clear line (exit 2)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from muselab.cli import app


def test_other_host_needs_a_token(tmp_home: Path) -> None:
    res = CliRunner().invoke(app, ["studio", "--host", "0.0.0.0"])
    assert res.exit_code == 2
    assert "needs a token" in res.output and "--token" in res.output


def test_busy_port(tmp_home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = CliRunner().invoke(app, ["studio", "--port", str(port), "--no-worker"])
    assert res.exit_code == 2 and f"--port {port}: cannot listen" in res.output


def test_bad_env_setting(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_PORT", "99999")
    res = CliRunner().invoke(app, ["studio"])
    assert res.exit_code == 2 and "MUSELAB_PORT: Input should be less than" in res.output
    res = CliRunner().invoke(app, ["studio", "--port", "0"])
    assert res.exit_code == 2 and "--port: Input should be greater than" in res.output
