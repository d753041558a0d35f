"""Narration scripts from hypothesis: every input is a valid script or a ScriptError naming a field.

Never a traceback, never a half-written output: loading writes nothing at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from narrate.errors import ScriptError
from narrate.script import NarrationScript, load_script

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(["title", "voice", "output", "generation", "segments", "engine", "id", "text", "x"])
script_like = st.dictionaries(keys, json_values, max_size=6)
# Unicode the narrators type, and what they paste by accident: RTL, emoji, combining marks, NUL.
tricky_text = st.text(
    st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S", "Zs", "Cc", "Cf"])
    | st.sampled_from(["\u202e", "\u200f", "\U0001f600", "\u0301", "\x00", "\ufeff"]),
    max_size=80,
)


def write(folder: Path, data: Any, suffix: str) -> Path:
    path = folder / f"script{suffix}"
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data), encoding="utf-8")
    return path


def load_or_error(path: Path) -> NarrationScript | ScriptError:
    before = sorted(p.name for p in path.parent.iterdir())
    try:
        result: NarrationScript | ScriptError = load_script(path)
    except ScriptError as error:
        result = error
        assert str(path) in str(error) and len(error.problems) >= 1
        assert all(":" in problem or ";" in problem for problem in error.problems), error.problems
    assert sorted(p.name for p in path.parent.iterdir()) == before  # nothing written
    return result


@FUZZ
@given(data=script_like, suffix=st.sampled_from([".json", ".yaml"]))
def test_random_structures_are_a_script_or_a_named_error(tmp_path: Path, data: Any, suffix: str) -> None:
    load_or_error(write(tmp_path, data, suffix))


@FUZZ
@given(texts=st.lists(tricky_text, min_size=1, max_size=5))
def test_unicode_edge_cases_in_segment_text(tmp_path: Path, texts: list[str]) -> None:
    data = {
        "title": "t",
        "voice": {"engine": "dev"},
        "segments": [{"id": f"s{i}", "text": t} for i, t in enumerate(texts)],
    }
    result = load_or_error(write(tmp_path, data, ".json"))
    if isinstance(result, ScriptError):
        assert any(p.startswith("segments[") for p in result.problems), result.problems
    else:
        assert all("\x00" not in s.text for s in result.segments)


@FUZZ
@given(segment_id=st.text(max_size=70))
def test_segment_ids_never_name_a_path_outside_a_folder(tmp_path: Path, segment_id: str) -> None:
    data = {"title": "t", "voice": {"engine": "dev"}, "segments": [{"id": segment_id, "text": "Hi."}]}
    result = load_or_error(write(tmp_path, data, ".json"))
    if isinstance(result, NarrationScript):
        folder = (tmp_path / "out").resolve()
        assert (folder / result.segments[0].id).resolve().parent == folder


@pytest.mark.parametrize("segment_id", ["../etc", "/abs", "a/b", "..", ".hidden", "a\\b", "c:x", "", " x"])
def test_path_like_segment_ids_are_refused(tmp_path: Path, segment_id: str) -> None:
    data = {"title": "t", "voice": {"engine": "dev"}, "segments": [{"id": segment_id, "text": "Hi."}]}
    with pytest.raises(ScriptError, match=r"segments\[0\]"):
        load_script(write(tmp_path, data, ".json"))


def test_thousands_of_segments_and_duplicate_ids(tmp_path: Path) -> None:
    segments = [{"id": f"s{i}", "text": f"Scene number {i}."} for i in range(3000)]
    big = load_script(
        write(tmp_path, {"title": "t", "voice": {"engine": "dev"}, "segments": segments}, ".json")
    )
    assert len(big.segments) == 3000
    segments[2999]["id"] = "s7"
    with pytest.raises(ScriptError, match="s7"):
        load_script(
            write(tmp_path, {"title": "t", "voice": {"engine": "dev"}, "segments": segments}, ".json")
        )


def test_a_huge_text_is_refused_with_the_limit(tmp_path: Path) -> None:
    data = {"title": "t", "voice": {"engine": "dev"}, "segments": [{"id": "a", "text": "word " * 100_000}]}
    with pytest.raises(
        ScriptError, match=r"segments\[0\] \(id 'a'\)\.text: is \d+ characters, over the limit"
    ):
        load_script(write(tmp_path, data, ".yaml"))
