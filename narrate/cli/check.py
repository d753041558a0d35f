"""``narrate check RENDER_DIR``: recognise each segment of a finished render and compare it with the
script; a table per segment on the terminal, the whole result in the render folder's check.json."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from narrate.cli.progress import console
from narrate.errors import CheckFailed
from narrate.outputs import RenderFolder


def add_commands(commands: Any) -> None:
    check = commands.add_parser(
        "check", help="does a finished render say its script? (offline speech recognition, English)"
    )
    check.add_argument("render_dir", help="the render's folder, e.g. renders/demo")
    check.add_argument("--language", help="the render's language, when its timeline does not say")
    check.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    from model_server.voices import normalize_language
    from narrate.check.render import check_render
    from narrate.errors import ConfigError

    folder = RenderFolder(args.render_dir)
    try:
        language = normalize_language(args.language) if args.language else None
    except ValueError as exc:
        raise ConfigError(f"--language: {exc}") from None
    count = len(folder.timeline().segments) if folder.has_timeline() else 0
    columns = (TextColumn("recognising"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("check", total=count)
        report = check_render(folder, language=language, on_segment=lambda _: progress.advance(task))
    table = Table(title=f"{folder.path}: what {report.recogniser} heard")
    for column in ("segment", "WER", "heard", "missed words", ""):
        table.add_column(column, justify="right" if column in {"WER", "heard"} else "left")
    for segment in report.segments:
        table.add_row(
            segment.id,
            f"{segment.word_error_rate:.2f}",
            f"{segment.words_heard:.0%}",
            escape(" ".join(segment.missed)) or "-",
            "[green]ok[/]" if segment.passed else "[bold red]not heard[/]",
        )
    console.print(table)
    console.print(
        f"mean word error rate {report.mean_word_error_rate:.2f}; a segment passes when at least "
        f"{report.min_words_heard:.0%} of its words are heard. Written to {folder.check_path}",
        soft_wrap=True,
        highlight=False,
    )
    if not report.passed:
        raise CheckFailed([s.id for s in report.failed], str(folder.check_path))
    return 0
