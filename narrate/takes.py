"""Takes: the deterministic seed of each take of a segment, and the takes a person picked.

Take 1 of a segment is its own seed (the segment's ``seed``, else the script's ``generation.seed``);
take k is a seed derived from that one and k, the same on every machine, so a re-roll is reproducible
and a take can be named by its number. ``narrate pick`` writes the picked take's seed into the takes
file beside the script (``demo.yaml`` -> ``demo.takes.yaml``), and every later render keeps it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from narrate.errors import ScriptError
from narrate.files import write_text_atomic

MAX_SEED = 2**31 - 1
MAX_TAKE = 100


def take_seed(first_seed: int, take: int) -> int:
    """The seed of take ``take`` (1-based) of a segment whose first take has ``first_seed``."""
    if take < 1:
        raise ValueError(f"take {take}: takes are numbered from 1")
    if take == 1:
        return first_seed
    digest = hashlib.sha256(f"narrate-take/{first_seed}/{take}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % MAX_SEED


class PickedTake(BaseModel):
    """A take a person chose for one segment, for the words it was chosen for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    take: int = Field(ge=1, le=MAX_TAKE)
    seed: int = Field(ge=0, le=MAX_SEED)
    text: str = Field(description="The words spoken when it was picked: a pick of other words is stale.")


def takes_path(script: str | Path) -> Path:
    path = Path(script)
    return path.with_name(f"{path.stem}.takes.yaml")


def load_picks(script: str | Path) -> dict[str, PickedTake]:
    """The picked takes of ``script`` by segment id; none when it has no takes file."""
    path = takes_path(script)
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ScriptError(str(path), ["must be a mapping of segment id -> {take, seed, text}"])
        return {str(k): PickedTake.model_validate(v) for k, v in data.items()}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problem = f"not a takes file ({exc.__class__.__name__}); fix or delete it"
        raise ScriptError(str(path), [problem]) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ScriptError(str(path), [f"{where}: {first['msg']}; fix it, or pick the take again"]) from None


def save_pick(script: str | Path, segment_id: str, pick: PickedTake) -> Path:
    """Pin ``pick`` for ``segment_id`` in the takes file beside ``script`` (written atomically)."""
    picks = load_picks(script) | {segment_id: pick}
    body = yaml.safe_dump(
        {sid: p.model_dump() for sid, p in sorted(picks.items())}, sort_keys=False, allow_unicode=True
    )
    header = f"# Takes picked with `narrate pick`: every render of {Path(script).name} keeps them.\n"
    return write_text_atomic(takes_path(script), header + body)
