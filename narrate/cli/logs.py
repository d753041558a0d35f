"""Where the log lines go while a command shows its live display: into ``render.log`` in the render
folder (and to the Prefect server, as always), not through the terminal, where Prefect's console
handler would write between the display's redraws and leave copies of its rows behind. ``--verbose``
shows them too, above the live display, through the same console the display draws on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.logging import RichHandler

from narrate.cli.progress import console

LOG_FORMAT = "%(asctime)s | %(levelname)-7s | %(name)s | %(message)s"


def _terminal_handlers() -> list[tuple[logging.Logger, logging.Handler]]:
    """Every handler that writes to a stream (the terminal), with its logger; files excluded."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    return [
        (logger, handler)
        for logger in loggers
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
    ]


@contextmanager
def logs_to_file(log_path: Path, verbose: bool = False) -> Iterator[Path]:
    """For the body, log lines that went to the terminal go to ``log_path`` (appended) instead, and
    with ``verbose`` to the rich console as well; as they were afterwards."""
    import prefect  # noqa: F401  (configures Prefect's logging: its handlers must exist to be moved)

    log_path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    shown = RichHandler(console=console, show_path=False, rich_tracebacks=False) if verbose else None
    logging.captureWarnings(True)  # Python warnings too: they go where the log lines go, not the screen
    moved = _terminal_handlers()
    for logger, handler in moved:
        logger.removeHandler(handler)
        for replacement in (to_file, shown):
            if replacement is not None and replacement not in logger.handlers:
                logger.addHandler(replacement)
    try:
        yield log_path
    finally:
        for logger, handler in moved:
            for replacement in (to_file, shown):
                if replacement is not None:
                    logger.removeHandler(replacement)
            logger.addHandler(handler)
        to_file.close()


def quiet_terminal_after_the_command() -> None:
    """What logs after the command (Prefect stopping its temporary server at exit) stays off the
    terminal unless it is a warning: the command's own output has ended."""
    for _, handler in _terminal_handlers():
        handler.setLevel(max(handler.level, logging.WARNING))
