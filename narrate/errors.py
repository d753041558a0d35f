"""The one exception hierarchy of the orchestration side; mapped to exit codes only in the CLI.

NarrateError
├── ScriptError              the narration script is invalid (nothing was synthesised)
├── ConfigError              settings or an engine/backend choice that cannot work
├── SynthesisError           a segment could not be synthesised
│   ├── TransientSynthesisError   worth retrying (throttling, timeouts, 5xx)
│   └── SegmentRejected           final: the handler refused the input
├── OutputInvalid            an output exists but is not usable audio (transient: retried)
├── AssemblyError            the assembled track does not match its timeline
├── RenderFailed             the render finished with failed segments (finished work kept)
├── VoicesFailed             some voices of a several-voice render failed (the others are finished)
└── VideoError               the screen recording could not be re-timed (ffmpeg failed, bad input)
    ├── MarksError           the scene marks are invalid (nothing was rendered)
    └── VideoDriftError      the rendered MP4 does not match its timeline (it was not published)
"""

from __future__ import annotations


class NarrateError(Exception):
    """Base of every error narrate raises on purpose."""

    exit_code = 1


class _ProblemList(NarrateError):
    """An input failed validation; ``problems`` holds one line per field, all reported at once."""

    exit_code = 2

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{listing}")


class ScriptError(_ProblemList):
    """The narration script failed validation."""


class ConfigError(NarrateError):
    exit_code = 2


class EndpointError(NarrateError):
    exit_code = 5


class SynthesisError(NarrateError):
    transient = False


class TransientSynthesisError(SynthesisError):
    transient = True


class SegmentRejected(SynthesisError):
    transient = False


class OutputInvalid(TransientSynthesisError):
    """The output object is not decodable audio at the expected rate (possibly truncated)."""


class AssemblyError(NarrateError):
    exit_code = 3


class VoicesFailed(NarrateError):
    exit_code = 4

    def __init__(self, failed: dict[str, str], out_dir: str) -> None:
        self.failed = failed
        lines = "\n".join(f"  - {name}: {message}" for name, message in failed.items())
        super().__init__(
            f"{len(failed)} voice(s) failed; the others are finished in {out_dir}/<voice>/. Each failed "
            f"voice's manifest.json says why; run the same render again to finish them.\n{lines}"
        )


class RenderFailed(NarrateError):
    exit_code = 4

    def __init__(self, failed: dict[str, str], manifest_path: str) -> None:
        self.failed = failed
        self.manifest_path = manifest_path
        lines = "\n".join(f"  - {sid}: {msg}" for sid, msg in failed.items())
        super().__init__(
            f"{len(failed)} segment(s) failed; finished segments are cached and recorded in "
            f"{manifest_path}. Fix the cause and run the same render again: only these are "
            f"re-synthesised.\n{lines}"
        )


class VideoError(NarrateError):
    exit_code = 6


class MarksError(_ProblemList, VideoError):
    """The scene marks failed validation."""

    exit_code = 2


class VideoDriftError(VideoError):
    """A measured scene of the rendered MP4 is more than one frame off its timeline."""

    exit_code = 3


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same call may succeed; used as Prefect's retry condition."""
    return isinstance(exc, TransientSynthesisError | TimeoutError | ConnectionError)
