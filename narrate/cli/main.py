"""``narrate``: validate, render, retry and serve narration scripts; manage the endpoint. Exit codes
come from the error (narrate.errors): 2 bad input, 3 assembly, 4 failed segments, 5 endpoint, 6 video,
7 a check that did not hear the script, 8 Content Credentials that could not be signed or did not verify."""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape

from narrate.cli import check, endpoint, provenance, render, runs, takes, voice
from narrate.cli.logs import quiet_terminal_after_the_command
from narrate.cli.progress import console
from narrate.errors import NarrateError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="narrate", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    render.add_commands(commands)
    endpoint.add_commands(commands)
    runs.add_commands(commands)
    check.add_commands(commands)
    takes.add_commands(commands)
    provenance.add_commands(commands)
    voice.add_commands(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except NarrateError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: finished segments are cached; run the same command again[/]")
        return 130


def entry() -> int:
    """The ``narrate`` command: :func:`main`, then a quiet terminal until the process exits."""
    code = main()
    quiet_terminal_after_the_command()
    return code


if __name__ == "__main__":
    sys.exit(entry())
