"""How a script's validation errors read: ``field.path: problem; fix``, in the words the user wrote."""

from __future__ import annotations

from typing import Any

from narrate.engines import Engine

_ENGINES = ", ".join(e.value for e in Engine)
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def describe_error(error: Any, data: dict[str, Any]) -> str:
    location = _location(tuple(error["loc"]), data)
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "missing":
        message = "is required; add it"
    elif kind == "extra_forbidden":
        message = "is not a known field; remove it or fix its spelling"
    elif kind == "union_tag_invalid":
        message = f"unknown engine {error['input'].get('engine')!r}; use one of {_ENGINES}"
    elif kind == "union_tag_not_found":
        message = f"needs an engine; add `engine:` with one of {_ENGINES}"
    elif kind == "string_pattern_mismatch" and location.endswith("[key]"):
        location = f"voices: {error['input']!r}"
        message = "a voice name must be 1-40 lowercase letters, digits, '-' or '_' (e.g. polly-matthew)"
    elif kind == "string_pattern_mismatch" and location.endswith(".id"):
        message = "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    elif kind in _BOUNDS:
        limit = next(iter(error["ctx"].values()))
        limit = f"{limit:g}" if isinstance(limit, float) else limit
        message = f"must be {_BOUNDS[kind]} {limit}, got {error['input']!r}; use a value in range"
    elif kind == "too_short":
        message = "is empty; add at least one entry"
    named, _, rest = message.partition(": ")
    if kind == "value_error" and rest and named.isidentifier():  # a voice's check naming its own field
        location, message = f"{location}.{named}" if location else named, rest
    return f"{location}: {message}" if location else message


def _location(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    index = 0
    while index < len(loc):
        item = loc[index]
        in_a_voice = parts == ["voice"] or (len(parts) == 2 and parts[0] == "voices")
        if in_a_voice and item in {e.value for e in Engine}:
            index += 1  # pydantic puts the union tag in the path; the user never wrote it
            continue
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
            if parts[-1].startswith("segments["):
                parts[-1] += item_label(data, "segments", item)
        else:
            parts.append(str(item))
        index += 1
    return ".".join(parts)


def item_label(data: dict[str, Any], list_key: str, index: int) -> str:
    """`` (id 'x')`` for item ``index`` of ``data[list_key]`` when it has an id: errors name it."""
    items = data.get(list_key)
    if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
        item_id = items[index].get("id")
        if isinstance(item_id, str) and item_id:
            return f" (id {item_id!r})"
    return ""
