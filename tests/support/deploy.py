"""The deployment files (deploy/compose.yaml, deploy/attune.env) as tests read them, so that the
multi-node test starts the very commands the compose file runs."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


@cache
def env_file() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "attune.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def command_for(name: str, **replace: str) -> list[str]:
    """A service's command, to run here: ``python``/``celery`` from this venv, and each argument
    in ``replace`` (e.g. ``{"0.0.0.0": "127.0.0.1"}``) swapped for its value."""
    command = [replace.get(arg, arg) for arg in service(name)["command"]]
    if command[0] == "python":
        command[0] = sys.executable
    elif command[0] == "celery":
        command[0] = str(Path(sys.executable).parent / "celery")
    return command
