"""docker-compose.yml cannot be run here (no container registry): it is kept consistent with the
settings and the command line by reading it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from service.cli import app
from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]*\}$")
"""``${NAME:?message}``: compose refuses to start until the operator sets NAME."""


def environment() -> dict[str, str]:
    return {name: str(value) for name, value in COMPOSE["x-doorstep"]["environment"].items()}


def test_every_setting_in_the_compose_file_is_one_the_service_reads_and_together_they_start_it() -> None:
    known = {f"DOORSTEP_{name.upper()}" for name in Settings.model_fields}
    assert set(environment()) <= known, set(environment()) - known
    values: dict[str, Any] = {}
    for name, value in environment().items():
        # What an operator must set (the part key) stands in as a secret of the length asked.
        values[name.removeprefix("DOORSTEP_").lower()] = "s" * 32 if REQUIRED.match(value) else value
    settings = Settings(**values)
    assert settings.runner == "celery" and settings.part_slots > 0
    assert settings.max_time_limit_s + settings.hard_limit_grace_s < settings.visibility_timeout_s


def test_every_service_command_is_one_the_command_line_knows() -> None:
    commands = [s["command"] for s in COMPOSE["services"].values() if s.get("command", [""])[0] == "doorstep"]
    assert {c[1] for c in commands} == {"serve", "worker"}
    for command in commands:
        result = CliRunner().invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)
