"""The README's two set-up commands stay true: CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> dict[str, str]:
    blocks = re.findall(r"```bash\n# (.+)\n(.+)\n```", (ROOT / "README.md").read_text())
    return dict(blocks)


def test_readme_has_exactly_the_two_setup_commands() -> None:
    commands = readme_commands()
    assert set(commands) == {"render the demo narration (offline neural voice)", "run the tests"}
    assert "narrate render examples/demo.yaml" in commands["render the demo narration (offline neural voice)"]


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()["run the tests"] in ci_lines
