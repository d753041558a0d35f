"""``narrate validate``, ``narrate render``, ``narrate video`` and ``narrate consent``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from narrate.cli.logs import logs_to_file
from narrate.cli.options import AWS_OPTION, settings_for
from narrate.cli.prefect_server import use_prefect_server
from narrate.cli.progress import ManifestProgress, console, print_result
from narrate.endpoints.kind import BACKENDS, EndpointKind
from narrate.errors import ConfigError
from narrate.outputs import RenderFolder
from narrate.pronunciations import words_to_check
from narrate.script import Engine, NarrationScript, load_script
from narrate.settings import Settings, get_settings


def add_commands(commands: Any) -> None:
    engines = [e.value for e in Engine]
    backends = [b.value for b in BACKENDS]

    validate = commands.add_parser("validate", help="check a narration script; synthesise nothing")
    validate.add_argument("script", help="narration script (.yaml, .yml or .json)")
    validate.add_argument("--voice-engine", choices=engines, help="check with this engine's voice")
    validate.set_defaults(run=run_validate)

    render = commands.add_parser("render", help="render a script to narration.wav, captions, timeline")
    render.add_argument("script", help="narration script (.yaml, .yml or .json)")
    render.add_argument("--out", help="output folder (default renders/<script name>/)")
    render.add_argument("--voice-engine", choices=engines, help="speak with this engine, e.g. dev")
    render.add_argument(
        "--backend", choices=backends, help="endpoint kind (default NARRATE_BACKEND: sagemaker)"
    )
    render.add_argument("--aws", **AWS_OPTION)
    render.add_argument(
        "--voice",
        action="append",
        metavar="NAME",
        help="a named voice of the script (repeat for several: each into <out>/<name>/, one wake)",
    )
    render.add_argument("--video", help="screen recording to re-time to the narration (video.mp4)")
    render.add_argument("--marks", help="its scene marks (default: the script's video.marks)")
    render.add_argument("-v", "--verbose", action="store_true", help="show the log lines too")
    render.set_defaults(run=run_render)

    video = commands.add_parser("video", help="re-time a screen recording to each voice's narration")
    video.add_argument("video", help="the screen recording (any format ffmpeg reads)")
    video.add_argument("--marks", required=True, help="scene marks: one per script segment")
    video.add_argument("--voice", action="append", metavar="NAME", required=True, help="named voice (repeat)")
    video.add_argument("--script", help="narration script (default: the marks file without .marks)")
    video.add_argument("--out", help="output folder (default renders/<script name>/)")
    video.add_argument("--backend", choices=backends, help="endpoint kind")
    video.add_argument("--aws", **AWS_OPTION)
    video.add_argument("-v", "--verbose", action="store_true", help="show the log lines too")
    video.set_defaults(run=lambda args: run_render(video_as_render(args)))

    consent = commands.add_parser("consent", help="voice-clone consent records")
    consent.add_argument("action", choices=["create"])
    consent.add_argument("--clip", required=True, help="the reference clip the person agreed to")
    consent.add_argument("--speaker", required=True, help="the person whose voice is cloned")
    consent.add_argument("--scope", required=True, help="what the voice may be used for, as agreed")
    consent.add_argument("--granted-on", help="YYYY-MM-DD (default today)")
    consent.add_argument("--expires-on", help="YYYY-MM-DD, last day it holds (default: until withdrawn)")
    consent.add_argument("--evidence", help="where the signed statement or recording is kept")
    consent.add_argument("--out", default="consent.json", help="where to write it (default consent.json)")
    consent.set_defaults(run=run_consent)


def run_validate(args: argparse.Namespace) -> int:
    from narrate.synthesis.requests import override_engine

    narration = load_script(args.script, max_segment_chars=get_settings().max_segment_chars)
    if args.voice_engine:
        narration = narration.with_voice(override_engine(narration.voice, Engine(args.voice_engine)))
    print_summary(args.script, narration)
    return 0


def print_summary(script: str, narration: NarrationScript) -> None:
    table = Table(title=f"{narration.title} ({narration.voice.engine.value})")
    for column in ("id", "chars", "min s", "pause s", "text"):
        table.add_column(column)
    for s in narration.segments:
        text = s.text if len(s.text) <= 60 else s.text[:57] + "..."
        table.add_row(s.id, str(len(s.text)), str(s.min_seconds or ""), str(s.pause_after_seconds), text)
    console.print(table)
    console.print(f"[green]{script}: valid[/] ({len(narration.segments)} segments)", soft_wrap=True)
    for segment in narration.segments:
        if words := words_to_check(segment.text, narration.lexicon):
            console.print(
                f"[yellow]warning[/]: {segment.id}: {', '.join(words)} may be said wrong; add how each is "
                "said under pronunciations: (e.g. SQL: sequel) if it is",
                soft_wrap=True,
                highlight=False,
            )


def video_as_render(args: argparse.Namespace) -> argparse.Namespace:
    """``narrate video VIDEO --marks M --voice V`` is a render of the marks' script with a video."""
    script = args.script
    if script is None:
        marks = Path(args.marks)
        script = str(marks.with_name(marks.name.replace(".marks", "", 1)))
        if script == str(marks) or not Path(script).is_file():
            raise ConfigError(
                f"--script: no script found beside {marks} (looked for {script}); give --script"
            )
    return argparse.Namespace(
        script=script, out=args.out, voice_engine=None, backend=args.backend, aws=args.aws,
        voice=args.voice, video=args.video, marks=args.marks, verbose=args.verbose,
    )  # fmt: skip


def run_render(args: argparse.Namespace) -> int:
    with settings_for(args.aws) as settings:
        return render_with(args, settings)


def render_with(args: argparse.Namespace, settings: Settings) -> int:
    from narrate.endpoints.preflight import endpoints_for, voices_asked

    narration = load_script(args.script, max_segment_chars=settings.max_segment_chars)
    voices = list(dict.fromkeys(args.voice or []))
    engine = Engine(args.voice_engine) if args.voice_engine else None
    backend = EndpointKind(args.backend or settings.backend)
    # an unknown voice, or one the endpoint cannot speak, is an error before anything starts
    endpoints_for(voices_asked(args.script, voices, engine, settings), backend, settings)
    use_prefect_server(console, settings.prefect_server)
    from flows.render_narration import default_out_dir, render_narration  # prefect: 2-4 s to import

    out = Path(args.out) if args.out else default_out_dir(args.script, settings)
    manifests = {name: RenderFolder(out / name).manifest_path for name in voices}
    if backend is EndpointKind.SAGEMAKER and settings.aws == "local":
        console.print(f"[dim]local mode: embedded AWS on 127.0.0.1, simulated cold start "
                      f"{settings.local_cold_start_seconds:g} s[/]")  # fmt: skip
    segment_ids = [s.id for s in narration.segments]
    price = None
    if backend is EndpointKind.SAGEMAKER:
        from narrate.aws.pricing import hourly_price

        price = hourly_price(settings.instance_type, settings.region, settings.hourly_price_usd)
    progress = ManifestProgress(manifests or RenderFolder(out).manifest_path, segment_ids, price)
    with logs_to_file(RenderFolder(out).log_path, args.verbose) as log, progress:
        result = render_narration(
            script=args.script,
            out_dir=str(out),
            voice_engine=engine,
            backend=backend,
            voices=voices or None,
            video=args.video,
            marks=args.marks,
        )
    for name, voice_result in result.get("voices", {"": result}).items():
        if name:
            console.print(f"[bold]voice {name}[/]")
        print_result(voice_result)
    console.print(f"  log        {log}", soft_wrap=True, highlight=False)
    return 0


def run_consent(args: argparse.Namespace) -> int:
    from datetime import date

    from narrate.consent import create_consent, write_consent

    clip = Path(args.clip)
    if not clip.is_file():
        raise ConfigError(f"--clip {clip}: no such file; give the reference clip the person agreed to")
    try:
        granted = date.fromisoformat(args.granted_on) if args.granted_on else date.today()
        expires = date.fromisoformat(args.expires_on) if args.expires_on else None
    except ValueError as exc:
        raise ConfigError(f"--granted-on/--expires-on: {exc}; write dates as YYYY-MM-DD") from None
    record = create_consent(clip, args.speaker, args.scope, granted, expires, args.evidence)
    path = write_consent(record, Path(args.out))
    console.print(
        f"wrote {path}: {record.consent_id} for {record.speaker_name}, clip sha256 "
        f"{record.reference_sha256[:12]}…; name it as the voice's consent in the script"
    )
    return 0
