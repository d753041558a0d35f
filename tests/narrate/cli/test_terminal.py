"""What a person sees in a terminal when they run the README's demo command, twice: one live display
that nothing else writes through (each segment's final row once), no log lines, no traceback, and
the log in the render folder instead. Drawn by a terminal emulator, not read off the raw bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from narrate.prefect_api import BackgroundServer
from tests.conftest import EXAMPLES
from tests.narrate.cli.terminal import run_in_terminal, screen_lines

SEGMENTS = ["intro", "connect-source", "pick-tables", "first-chart", "filters", "share", "alerts", "outro"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def final_rows(lines: list[str], state: str) -> dict[str, int]:
    return {
        s: sum(1 for line in lines if line.startswith(f"{s} ") and f" {state} " in line) for s in SEGMENTS
    }


@pytest.mark.usefixtures("narrate_dirs")
def test_the_demo_twice_in_a_terminal_shows_each_row_once_and_no_traceback(project: Path) -> None:
    """...and the second run starts no Prefect server: it reuses the first one's, in the background."""
    env = {"PREFECT_HOME": str(project / ".prefect"), "PREFECT_API_URL": ""}
    runs = {}
    try:
        for run, state in (("first", "synthesised"), ("second", "cached")):
            code, output = run_in_terminal(["render", "examples/demo.yaml"], project, env)
            lines = screen_lines(output)
            shown = "\n".join(lines)
            assert code == 0, shown
            assert final_rows(lines, state) == dict.fromkeys(SEGMENTS, 1), shown  # one display, drawn once
            assert not any(
                s.startswith(f"{segment} ") for s in lines for segment in SEGMENTS if state not in s
            ), shown
            assert "Traceback" not in shown and "| INFO" not in shown and "| ERROR" not in shown, shown
            assert "done: 8 segments" in shown
            runs[run] = (shown, BackgroundServer.recorded(project / ".prefect"))
    finally:
        run_in_terminal(["server", "stop"], project, env)
    log = project / "renders" / "demo" / "render.log"
    assert "synthesised and cached" in log.read_text() and "endpoint not used" in log.read_text()  # 2nd
    (first, first_server), (second, second_server) = runs["first"], runs["second"]
    assert "0 cached, 8 synthesised" in first and "8 cached, 0 synthesised" in second
    assert "started the local Prefect server" in first and "Prefect server" not in second
    assert first_server is not None and second_server == first_server  # the same server, reused
