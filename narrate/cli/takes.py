"""``narrate takes`` (several scored takes of one segment) and ``narrate pick`` (pin one for good)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from narrate.cli.logs import logs_to_file
from narrate.cli.options import AWS_OPTION, settings_for
from narrate.cli.prefect_server import use_prefect_server
from narrate.cli.progress import ManifestProgress, console
from narrate.endpoints.kind import BACKENDS, EndpointKind
from narrate.errors import ConfigError
from narrate.outputs import RenderFolder
from narrate.script import load_script, normalize_text, take_id
from narrate.takes import MAX_TAKE, PickedTake, save_pick, take_seed


def add_commands(commands: Any) -> None:
    takes = commands.add_parser("takes", help="synthesise several takes of one segment, scored, to pick from")
    takes.add_argument("script", help="narration script (.yaml, .yml or .json)")
    takes.add_argument("--segment", required=True, metavar="ID", help="the segment's id")
    takes.add_argument("--count", type=int, default=3, help="how many takes (default 3, at most 20)")
    takes.add_argument("--out", help="output folder (default renders/<script name>/takes/<segment>/)")
    takes.add_argument("--backend", choices=[b.value for b in BACKENDS], help="endpoint kind")
    takes.add_argument("--aws", **AWS_OPTION)
    takes.add_argument("-v", "--verbose", action="store_true", help="show the log lines too")
    takes.set_defaults(run=run_takes)

    pick = commands.add_parser("pick", help="pin a take of a segment: every later render keeps it")
    pick.add_argument("script", help="narration script (.yaml, .yml or .json)")
    pick.add_argument("--segment", required=True, metavar="ID", help="the segment's id")
    pick.add_argument(
        "--take", required=True, type=int, metavar="K", help="the take's number (narrate takes)"
    )
    pick.set_defaults(run=run_pick)


def run_takes(args: argparse.Namespace) -> int:
    if not 1 <= args.count <= 20:
        raise ConfigError(f"--count {args.count}: ask for 1 to 20 takes")
    with settings_for(args.aws) as settings:
        narration = load_script(args.script, max_segment_chars=settings.max_segment_chars)
        narration.alternatives(args.segment, args.count)  # an unknown id fails here, before anything starts
        use_prefect_server(console, settings.prefect_server)
        from flows.render_narration import default_out_dir
        from flows.segment_takes import segment_takes

        out = Path(args.out) if args.out else default_out_dir(args.script, settings) / "takes" / args.segment
        ids = [take_id(args.segment, k) for k in range(1, args.count + 1)]
        backend = EndpointKind(args.backend or settings.backend)
        with (
            logs_to_file(RenderFolder(out).log_path, args.verbose),
            ManifestProgress(RenderFolder(out).manifest_path, ids),
        ):
            result = segment_takes(
                script=args.script, segment=args.segment, count=args.count, out_dir=str(out), backend=backend
            )
    table = Table(title=f"takes of {args.segment}")
    for column in ("take", "seed", "gate", "file"):
        table.add_column(column)
    for take in result["takes"]:
        verdict = "[green]passed[/]" if take["passed"] else f"[red]failed[/]: {escape(take['summary'])}"
        table.add_row(str(take["take"]), str(take["seed"]), verdict, escape(take["file"]))
    console.print(table)
    console.print(
        f"listen, then pin one: narrate pick {args.script} --segment {args.segment} --take K",
        soft_wrap=True,
        highlight=False,
    )
    return 0


def run_pick(args: argparse.Namespace) -> int:
    from tasks.script import segment_voice, spoken_form

    narration = load_script(args.script)
    if not 1 <= args.take <= MAX_TAKE:
        raise ConfigError(f"--take {args.take}: takes are numbered 1 to {MAX_TAKE}")
    segment = next((s for s in narration.segments if s.id == args.segment), None)
    if segment is None:
        ids = ", ".join(s.id for s in narration.segments)
        raise ConfigError(f"--segment {args.segment!r} is not a segment of {args.script}; its ids: {ids}")
    first_seed = narration.generation.seed if segment.seed is None else segment.seed
    _, spoken = spoken_form(narration, segment_voice(narration.voice, segment), normalize_text(segment.text))
    pick = PickedTake(take=args.take, seed=take_seed(first_seed, args.take), text=spoken)
    path = save_pick(args.script, args.segment, pick)
    console.print(
        f"pinned take {pick.take} (seed {pick.seed}) of {args.segment} in {path}: every render of "
        f"{args.script} keeps it (until its words change)",
        soft_wrap=True,
        highlight=False,
    )
    return 0
