"""Where a voice's entry is written: a voices file (``--voices``), or the voices of a script
(``--script``: the voices file it names, or its own ``voices:`` mapping). YAML files are edited where
the entry goes, so their comments and layout stay; JSON files are rewritten whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from narrate.errors import ConfigError
from narrate.script import load_mapping_file, parse_script_text


@dataclass(frozen=True)
class VoicesTarget:
    """The file that holds the voices (``key``: under which top-level key; None: at the top)."""

    file: Path
    key: str | None = None

    @property
    def folder(self) -> Path:
        """Where a voice's clip, consent and report go: ``voices/`` beside that file."""
        return self.file.parent / "voices"

    def voices(self) -> dict[str, Any]:
        if not self.file.is_file():
            return {}
        data = load_mapping_file(self.file, "voices")
        found = data.get(self.key) if self.key else data
        return found if isinstance(found, dict) else {}

    def with_entry(self, name: str, entry: dict[str, Any]) -> str:
        """The file's text with ``name: entry`` added, or put in place of the entry of that name."""
        text = self.file.read_text(encoding="utf-8") if self.file.is_file() else ""
        if self.file.suffix.lower() == ".json":
            data = json.loads(text) if text.strip() else {}
            (data.setdefault(self.key, {}) if self.key else data)[name] = entry
            return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        return _yaml_with_entry(text, self.key, name, entry)


def voices_target(script: Path | None, voices: Path | None) -> VoicesTarget:
    """The file a voice is written into: ``voices`` itself, or the voices of ``script``."""
    if script is None:
        return VoicesTarget(voices or Path("voices.yaml"))
    if not script.is_file():
        raise ConfigError(f"--script {script}: no such file; give the narration script, or --voices FILE")
    data = parse_script_text(script.read_text(encoding="utf-8"), str(script), script.suffix.lower())
    named = data.get("voices") if isinstance(data, dict) else None
    if isinstance(named, str):  # the script's voices live in a file of their own
        return VoicesTarget(script.parent / named)
    return VoicesTarget(script, "voices")


def flow_entry(entry: dict[str, Any]) -> str:
    """An entry on one line, as the README writes voices: ``{engine: qwen-clone, ...}``."""
    return yaml.safe_dump(
        entry, default_flow_style=True, width=1 << 20, sort_keys=False, allow_unicode=True
    ).strip()


def _yaml_with_entry(text: str, key: str | None, name: str, entry: dict[str, Any]) -> str:
    root = yaml.compose(text) if text.strip() else None
    if root is not None and not isinstance(root, yaml.MappingNode):
        raise ConfigError("the voices file is not a mapping of name -> voice; fix it or give another file")
    mapping = _child(root, key) if key else root
    line = f"{name}: {flow_entry(entry)}"
    if mapping is None:  # no voices yet: a new block at the end
        block = f"{key}:\n  {line}\n" if key else f"{line}\n"
        return text + ("" if not text or text.endswith("\n") else "\n") + block
    if not isinstance(mapping, yaml.MappingNode) or (mapping.flow_style and mapping.value):
        raise ConfigError(
            f"`{key or 'the voices'}` is not written one voice per line; write it as a block mapping "
            "(name: {...} on each line) or give --voices FILE"
        )
    for key_node, value_node in mapping.value:
        if key_node.value == name:  # in place of the old entry, comments around it kept
            end = _trimmed_end(text, value_node.end_mark.index)
            return text[: value_node.start_mark.index] + flow_entry(entry) + text[end:]
    if not mapping.value:  # `voices: {}`
        start, end = mapping.start_mark.index, mapping.end_mark.index
        return text[:start] + "\n  " + line + text[end:]
    indent = " " * mapping.value[0][0].start_mark.column
    after = _trimmed_end(text, mapping.value[-1][1].end_mark.index)
    line_end = text.find("\n", after)
    at = len(text) if line_end < 0 else line_end + 1
    prefix = "" if line_end >= 0 or not text else "\n"
    return text[:at] + prefix + indent + line + "\n" + text[at:]


def _child(root: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    return next((value for k, value in root.value if k.value == key), None)


def _trimmed_end(text: str, end: int) -> int:
    """A node's end without the blank lines and indentation yaml counts into a block's end."""
    while end > 0 and text[end - 1] in " \n\r\t":
        end -= 1
    return end
