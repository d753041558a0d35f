"""``narrate voice add`` (a cloned voice from a recording: checked, cut, transcribed, consented, in
one step) and ``narrate voice confirm`` (a recogniser's draft transcript confirmed or corrected)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from narrate.cli.progress import console
from narrate.errors import ConfigError
from narrate.script import VOICE_NAME_PATTERN
from narrate.voices.add import (
    Consent,
    PreparedClip,
    choose_transcript,
    clip_report,
    clip_wav,
    confirm_voice,
    prepare_clip,
    refuse_problems,
    write_voice,
)
from narrate.voices.decode import ACCEPTED, decode_recording
from narrate.voices.entry import voices_target
from narrate.voices.report import ClipCheck, Verdict
from narrate.voices.transcript import RECOGNISED_LANGUAGES
from narrate.voices.window import ClipBounds

VOICE_NAME = re.compile(VOICE_NAME_PATTERN)
_VERDICT_STYLE = {Verdict.PASS: "green", Verdict.WARN: "yellow", Verdict.FAIL: "bold red"}


def add_commands(commands: Any) -> None:
    voice = commands.add_parser("voice", help="your own voice: a cloned voice from a recording")
    actions = voice.add_subparsers(dest="action", required=True)

    add = actions.add_parser("add", help="a cloned voice from any recording: checked, cut, with consent")
    add.add_argument("name", help="the voice's name (lowercase letters, digits, - and _)")
    add.add_argument("--clip", required=True, help=f"the recording: {ACCEPTED}")
    add.add_argument("--speaker", required=True, help="the person whose voice it is (the consent record)")
    add.add_argument("--scope", required=True, help="what the voice may be used for, as they agreed")
    add.add_argument("--granted-on", help="YYYY-MM-DD (default today)")
    add.add_argument("--expires-on", help="YYYY-MM-DD, last day the consent holds (default: until withdrawn)")
    add.add_argument("--evidence", help="where the signed statement or recording of consent is kept")
    add.add_argument("--transcript", help="the exact words of the recording (default: a draft to confirm)")
    add.add_argument("--language", default="english", help="what the voice speaks (default english)")
    add.add_argument("--min-seconds", type=float, default=10.0, help="shortest clip to cut (default 10)")
    add.add_argument("--max-seconds", type=float, default=15.0, help="longest clip to cut (default 15)")
    add.add_argument("--accept-warnings", action="store_true", help="keep a clip whose checks warn")
    _add_target(add)
    add.set_defaults(run=run_add)

    confirm = actions.add_parser("confirm", help="confirm (or correct) a voice's draft transcript")
    confirm.add_argument("name", help="the voice's name")
    confirm.add_argument("--transcript", help="the exact words of the clip, in place of the draft")
    _add_target(confirm)
    confirm.set_defaults(run=run_confirm)


def _add_target(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--script", help="into this script's voices (its voices file, or its voices:)")
    where.add_argument("--voices", help="into this voices file (default voices.yaml)")


def run_add(args: argparse.Namespace) -> int:
    from model_server.voices import normalize_language

    if not VOICE_NAME.match(args.name):
        raise ConfigError(f"voice name {args.name!r}: use 1-40 lowercase letters, digits, '-' or '_'")
    try:
        language = normalize_language(args.language)
    except ValueError as exc:
        raise ConfigError(f"--language: {exc}") from None
    if args.transcript is None and language not in RECOGNISED_LANGUAGES:
        raise ConfigError(f"--transcript is required: no offline recogniser hears {language}; write the "
                          "exact words of the recording")  # fmt: skip
    if not 2.0 <= args.min_seconds <= args.max_seconds <= 60.0:
        raise ConfigError("--min-seconds/--max-seconds: 2 <= min <= max <= 60 (Qwen3-TTS clones from 2-60 s)")
    target = voices_target(_path(args.script), _path(args.voices))
    consent = Consent(args.speaker, args.scope, *_dates(args), evidence=args.evidence)
    clip = Path(args.clip)
    recording = decode_recording(clip)
    whole = args.transcript is not None and language not in RECOGNISED_LANGUAGES  # cannot cut it
    prepared = prepare_clip(recording, clip.name, ClipBounds(args.min_seconds, args.max_seconds), whole)
    show_checks(prepared)
    refuse_problems(prepared, args.accept_warnings)
    transcript = choose_transcript(prepared, args.transcript, _ask if sys.stdin.isatty() else None)
    if transcript.origin.startswith("given, cut"):
        console.print(f"transcript of the clip: {escape(transcript.text)}", soft_wrap=True, highlight=False)
    report = clip_report(args.name, prepared, transcript, args.accept_warnings)
    written = write_voice(target, args.name, language, clip_wav(prepared.samples), report, consent)
    console.print(f"wrote {written.clip} ({prepared.cut.clip_seconds:.1f} s), {written.consent.name}, "
                  f"{written.report.name} and voice {args.name!r} in {written.voices_file}",
                  soft_wrap=True, highlight=False)  # fmt: skip
    if not transcript.confirmed:
        command = f"narrate voice confirm {args.name} {_target_option(args)}".rstrip()
        heard = escape(repr(transcript.text))
        console.print(f"[yellow]transcript not confirmed[/]: the recogniser heard {heard}; listen to "
                      f"{written.clip.name} and run `{escape(command)}` (with --transcript "
                      '"the exact words" to correct it): until then the voice is refused',
                      soft_wrap=True, highlight=False)  # fmt: skip
    return 0


def run_confirm(args: argparse.Namespace) -> int:
    target = voices_target(_path(args.script), _path(args.voices))
    text = confirm_voice(target, args.name, args.transcript)
    console.print(f"voice {args.name!r} confirmed in {target.file}: {escape(repr(text))}",
                  soft_wrap=True, highlight=False)  # fmt: skip
    return 0


def show_checks(prepared: PreparedClip) -> None:
    """Each check's value and verdict, and what to do about a warning or a failure."""
    recording = prepared.recording
    table = Table(title=f"{prepared.source}: {recording.codec}, {recording.seconds:.1f} s; clip "
                        f"{prepared.cut.start_seconds:.1f}-{prepared.cut.end_seconds:.1f} s")  # fmt: skip
    for column in ("check", "value", "verdict", "what it means"):
        table.add_column(column)
    for check in prepared.checks:
        style = _VERDICT_STYLE[check.verdict]
        meaning = f"{check.detail}; {check.advice}" if check.advice else check.detail
        table.add_row(check.name, _value(check), f"[{style}]{check.verdict.value}[/]", escape(meaning))
    console.print(table)


def _ask(draft: str) -> str:
    """The draft shown at the terminal: Enter keeps it, or the person types the exact words."""
    console.print(f"the recogniser heard: {escape(draft)}", soft_wrap=True, highlight=False)
    return console.input("Enter to keep it, or type the exact words of the clip: ")


def _value(check: ClipCheck) -> str:
    return "" if check.value is None else f"{check.value:g} {check.unit}"


def _dates(args: argparse.Namespace) -> tuple[date, date | None]:
    try:
        granted = date.fromisoformat(args.granted_on) if args.granted_on else date.today()
        expires = date.fromisoformat(args.expires_on) if args.expires_on else None
    except ValueError as exc:
        raise ConfigError(f"--granted-on/--expires-on: {exc}; write dates as YYYY-MM-DD") from None
    return granted, expires


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _target_option(args: argparse.Namespace) -> str:
    if args.script:
        return f"--script {args.script}"
    return f"--voices {args.voices}" if args.voices else ""
