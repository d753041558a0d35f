"""``narrate takes`` and ``narrate pick``: the take a person listened to is the take every render keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from narrate.cli.main import main
from narrate.manifest import RenderManifest
from narrate.takes import take_seed
from tests.conftest import write_script

TEXT = "Welcome to Acme Insights. We will turn raw sales data into a dashboard your team can use."


@pytest.fixture
def script(tmp_path: Path) -> Path:
    segments = f"  - id: intro\n    text: {TEXT}\n  - id: outro\n    text: That is all it takes.\n"
    return write_script(tmp_path, f"title: t\nvoice: {{engine: piper}}\nsegments:\n{segments}")


@pytest.mark.usefixtures("prefect_server")
def test_takes_lists_scored_files_and_the_picked_one_is_what_renders(
    script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    takes_dir = tmp_path / "takes"
    args = ["takes", str(script), "--segment", "intro", "--count", "2", "--backend", "inprocess"]
    assert main([*args, "--out", str(takes_dir)]) == 0
    shown = " ".join(capsys.readouterr().err.split())
    assert "takes of intro" in shown and f"narrate pick {script} --segment intro --take K" in shown
    listing = json.loads((takes_dir / "takes.json").read_text())
    assert [t["seed"] for t in listing] == [take_seed(0, 1), take_seed(0, 2)]
    assert all(Path(t["file"]).stat().st_size > 1000 and "passed" in t for t in listing)
    heard = RenderManifest.load(takes_dir / "manifest.json").segments[1].cache_key

    assert main(["pick", str(script), "--segment", "intro", "--take", "2"]) == 0
    picks = yaml.safe_load((tmp_path / "script.takes.yaml").read_text())
    assert picks == {"intro": {"take": 2, "seed": take_seed(0, 2), "text": TEXT}}
    out = tmp_path / "out"
    assert main(["render", str(script), "--out", str(out), "--backend", "inprocess"]) == 0
    intro = RenderManifest.load(out / "manifest.json").segment("intro")
    assert intro.cache_key == heard and intro.cache_hit  # exactly the take that was listened to


def test_pick_refuses_an_unknown_segment_and_take(script: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pick", str(script), "--segment", "nope", "--take", "2"]) == 2
    assert "--segment 'nope' is not a segment" in capsys.readouterr().err
    assert main(["pick", str(script), "--segment", "intro", "--take", "0"]) == 2
    assert not (script.parent / "script.takes.yaml").exists()
    assert main(["takes", str(script), "--segment", "nope"]) == 2
    shown = " ".join(capsys.readouterr().err.split())
    assert "'nope' is not a segment of the script; its ids: intro, outro" in shown
