"""The ``narrate`` command line: validate and render scripts, with progress, and exit codes by error."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from narrate.errors import NarrateError
from narrate.script import Engine, NarrationScript, load_script
from narrate.settings import get_settings

console = Console(stderr=True)
PER_SEGMENT_BARS_UP_TO = 30


def prepare_prefect_environment() -> None:
    """Defaults that make a first run on a fresh machine work; explicit settings win.

    Without PREFECT_API_URL, Prefect starts a temporary local server per process; on a fresh
    PREFECT_HOME its start-up can take 20-40 s, past Prefect's default 20 s timeout.
    """
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "240")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="narrate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    engines = [e.value for e in Engine]

    validate = commands.add_parser("validate", help="check a narration script; synthesise nothing")
    validate.add_argument("script", help="narration script (.yaml, .yml or .json)")
    validate.add_argument("--voice-engine", choices=engines, help="check with this engine's voice")

    render = commands.add_parser("render", help="render a script to narration.wav, captions, timeline")
    render.add_argument("script", help="narration script (.yaml, .yml or .json)")
    render.add_argument("--out", help="output folder (default renders/<script name>/)")
    render.add_argument("--voice-engine", choices=engines, help="speak with this engine, e.g. dev")
    render.add_argument(
        "--backend",
        choices=["sagemaker", "inprocess"],
        help="endpoint kind (default NARRATE_BACKEND: sagemaker)",
    )
    render.add_argument(
        "--aws",
        choices=["local", "real"],
        help="local: embedded AWS on 127.0.0.1 (default); real: your account",
    )
    render.add_argument(
        "--voice",
        action="append",
        metavar="NAME",
        help="a named voice of the script (repeat for several: each into <out>/<name>/, one wake)",
    )
    render.add_argument("--video", help="screen recording to re-time to the narration (video.mp4)")
    render.add_argument("--marks", help="its scene marks (default: the script's video.marks)")

    video = commands.add_parser("video", help="re-time a screen recording to each voice's narration")
    video.add_argument("video", help="the screen recording (any format ffmpeg reads)")
    video.add_argument("--marks", required=True, help="scene marks: one per script segment")
    video.add_argument("--voice", action="append", metavar="NAME", required=True, help="named voice (repeat)")
    video.add_argument("--script", help="narration script (default: the marks file without .marks)")
    video.add_argument("--out", help="output folder (default renders/<script name>/)")
    video.add_argument("--backend", choices=["sagemaker", "inprocess"], help="endpoint kind")
    video.add_argument("--aws", choices=["local", "real"], help="local (default) or real AWS")
    consent = commands.add_parser("consent", help="voice-clone consent records")
    consent.add_argument("action", choices=["create"])
    consent.add_argument("--clip", required=True, help="the reference clip the person agreed to")
    consent.add_argument("--speaker", required=True, help="the person whose voice is cloned")
    consent.add_argument("--scope", required=True, help="what the voice may be used for, as agreed")
    consent.add_argument("--granted-on", help="YYYY-MM-DD (default today)")
    consent.add_argument("--expires-on", help="YYYY-MM-DD, last day it holds (default: until withdrawn)")
    consent.add_argument("--evidence", help="where the signed statement or recording is kept")
    consent.add_argument("--out", default="consent.json", help="where to write it (default consent.json)")
    from narrate.cli_endpoint import add_endpoint_commands
    from narrate.cli_runs import add_run_commands

    add_endpoint_commands(commands)
    add_run_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args.script, args.voice_engine)
        if args.command == "render":
            return _render(args)
        if args.command == "video":
            return _render(_video_as_render(args))
        if args.command == "consent":
            return _create_consent(args)
        if args.command in ("retry", "runs", "serve"):
            from narrate.cli_runs import run_command

            return run_command(args, console)
        from narrate.cli_endpoint import run_endpoint_command

        return run_endpoint_command(args, console)
    except NarrateError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: finished segments are cached; run the same command again[/]")
        return 130


def _create_consent(args: argparse.Namespace) -> int:
    from datetime import date

    from narrate.consent import create_consent, write_consent
    from narrate.errors import ConfigError

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


def _validate(script: str, voice_engine: str | None) -> int:
    from narrate.payloads import override_engine

    narration = load_script(script, max_segment_chars=get_settings().max_segment_chars)
    if voice_engine:
        narration = narration.with_voice(override_engine(narration.voice, Engine(voice_engine)))
    _print_summary(script, narration)
    return 0


def _print_summary(script: str, narration: NarrationScript) -> None:
    table = Table(title=f"{narration.title} ({narration.voice.engine.value})")
    for column in ("id", "chars", "min s", "pause s", "text"):
        table.add_column(column)
    for s in narration.segments:
        text = s.text if len(s.text) <= 60 else s.text[:57] + "..."
        table.add_row(s.id, str(len(s.text)), str(s.min_seconds or ""), str(s.pause_after_seconds), text)
    console.print(table)
    console.print(f"[green]{script}: valid[/] ({len(narration.segments)} segments)", soft_wrap=True)


def _video_as_render(args: argparse.Namespace) -> argparse.Namespace:
    """``narrate video VIDEO --marks M --voice V`` is a render of the marks' script with a video."""
    from narrate.errors import ConfigError

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
        voice=args.voice, video=args.video, marks=args.marks,
    )  # fmt: skip


def _render(args: argparse.Namespace) -> int:
    prepare_prefect_environment()
    from flows.render_narration import default_out_dir, render_narration

    narration = load_script(args.script, max_segment_chars=get_settings().max_segment_chars)
    voices = list(dict.fromkeys(args.voice or []))
    for name in voices:  # an unknown name is an error before anything starts
        narration.with_named_voice(name)
    out = Path(args.out) if args.out else default_out_dir(args.script, get_settings())
    manifests = {name: out / name / "manifest.json" for name in voices} or out / "manifest.json"
    if not os.environ.get("PREFECT_API_URL"):
        console.print("[dim]no PREFECT_API_URL: starting a temporary local Prefect server "
                      "(10-40 s on a first run)[/]")  # fmt: skip
    backend = args.backend or get_settings().backend
    with (
        _aws_for(backend, args.aws),
        ManifestProgress(manifests, [s.id for s in narration.segments]),
    ):
        result = render_narration(
            script=args.script,
            out_dir=str(out),
            voice_engine=Engine(args.voice_engine) if args.voice_engine else None,
            backend=backend,
            voices=voices or None,
            video=args.video,
            marks=args.marks,
        )
    for name, voice_result in result.get("voices", {"": result}).items():
        if name:
            console.print(f"[bold]voice {name}[/]")
        print_result(voice_result)
    return 0


def _aws_for(backend: str, mode: str | None) -> AbstractContextManager[object]:
    if backend != "sagemaker":
        return nullcontext()
    from narrate.aws_mode import aws_session

    settings = get_settings()
    where = mode or settings.aws
    if where == "local":
        console.print(f"[dim]local mode: embedded AWS on 127.0.0.1, simulated cold start "
                      f"{settings.local_cold_start_seconds:g} s[/]")  # fmt: skip
    return aws_session(where)  # type: ignore[arg-type]


def print_result(result: dict[str, object]) -> None:
    outputs = result["outputs"]
    assert isinstance(outputs, dict)
    timeline = json.loads(Path(outputs["timeline"]).read_text(encoding="utf-8"))
    loudness = timeline["loudness"]
    console.print(
        f"[bold green]done[/]: {len(timeline['segments'])} segments, {timeline['total_seconds']:.2f} s, "
        f"{result['cached']} cached, {result['synthesised']} synthesised; "
        f"{loudness['output_lufs']} LUFS, true peak {loudness['true_peak_dbtp']} dBTP",
        soft_wrap=True,
    )
    manifest = json.loads((Path(outputs["timeline"]).parent / "manifest.json").read_text(encoding="utf-8"))
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in manifest["stage_seconds"].items())
    console.print(f"  stages: {stages}", soft_wrap=True, highlight=False)
    console.print(
        f"  GPU: {manifest['gpu_seconds']:.1f} GPU-seconds held, ${manifest['cost_usd']:.4f}",
        soft_wrap=True,
        highlight=False,
    )
    if manifest.get("emulated"):
        note = manifest["emulated"]
        console.print(f"  [bold yellow]emulated[/]: {note} (not the real voice)", soft_wrap=True)
    for kind, path in outputs.items():
        console.print(f"  {kind:<9} {path}", soft_wrap=True, highlight=False)


class ManifestProgress:
    """Progress bars fed by the render manifests the flow rewrites as segments finish: a bar per segment
    for one short render, else one bar per manifest (per voice)."""

    def __init__(self, manifest_path: Path | dict[str, Path], segment_ids: list[str]) -> None:
        self.paths = manifest_path if isinstance(manifest_path, dict) else {"segments": manifest_path}
        self.ids = segment_ids
        self.per_segment = len(self.paths) == 1 and len(segment_ids) <= PER_SEGMENT_BARS_UP_TO
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )  # fmt: skip
        self.stop = threading.Event()
        self.rows: dict[str, TaskID] = {}
        self.started_after = {
            name: p.stat().st_mtime if p.exists() else 0.0 for name, p in self.paths.items()
        }

    def __enter__(self) -> ManifestProgress:
        if self.per_segment:
            for segment_id in self.ids:
                self.rows[segment_id] = self.progress.add_task(segment_id, total=1, status="waiting")
        else:
            for name in self.paths:
                self.rows[name] = self.progress.add_task(name, total=len(self.ids), status="waiting")
        self.progress.start()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._update()
        self.progress.stop()

    def _poll(self) -> None:
        while not self.stop.wait(0.2):
            self._update()

    def _update(self) -> None:
        for name, path in self.paths.items():
            self._update_one(name, path)

    def _update_one(self, name: str, path: Path) -> None:
        try:
            if path.stat().st_mtime <= self.started_after[name]:
                return
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # not written yet (or from an earlier render): keep the last view
        finished = 0
        for record in data.get("segments", []):
            status = record["status"]
            label = "cached" if record.get("cache_hit") else status
            if status == "done" and not record.get("cache_hit"):
                label = "synthesised"
            if status == "pending" and record.get("attempts"):
                label = f"retrying ({record['attempts']} attempt(s))"
            if status == "failed":
                label = f"[red]failed: {(record.get('error') or '')[:60]}[/]"
            done = status in {"done", "failed"}
            finished += done
            if self.per_segment and record["id"] in self.rows:
                self.progress.update(self.rows[record["id"]], completed=int(done), status=label)
        if not self.per_segment:
            stage = " (re-timing the video)" if data.get("state") == "running" and data.get("outputs") else ""
            status = f"{finished}/{len(self.ids)} {data.get('state', '')}{stage}"
            self.progress.update(self.rows[name], completed=finished, status=status)


if __name__ == "__main__":
    sys.exit(main())
