"""The one exception hierarchy of the orchestration side, and the one place that decides whether an
error is worth retrying. Errors become exit codes only in the CLI.

NarrateError
├── ScriptError                  the narration script is invalid (nothing was synthesised)
├── ClipRejected                 narrate voice add: a recording that cannot make a reference clip
├── ConfigError                  settings or an engine/backend choice that cannot work
├── EndpointError                the endpoint cannot serve (failed, never woke, does not exist)
│   └── ModelNotLoaded           it is up, but its model did not load: it refuses every request
├── SynthesisError               a segment could not be synthesised
│   ├── TransientSynthesisError  worth retrying (throttling, timeouts, 5xx)
│   │   └── OutputInvalid        an output exists but is not usable audio (maybe truncated)
│   └── SegmentRejected          final: the handler or the service refused the input
├── AssemblyError                the assembled track does not match its timeline
├── RenderFailed                 the render finished with failed segments (finished work kept)
├── VoicesFailed                 some voices of a several-voice render failed (the others are finished)
├── VideoError                   the screen recording could not be re-timed (ffmpeg failed, bad input)
│   ├── MarksError               the scene marks are invalid (nothing was rendered)
│   └── VideoDriftError          the rendered MP4 does not match its timeline (it was not published)
└── ProvenanceError              a file could not be signed, or its signed copy did not verify (not published)
    └── VerificationFailed       narrate verify: a file's C2PA manifest is missing, broken, does not match its
                                 bytes, or its signer is not on the trust list
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

# AWS error codes that mean "the same call may succeed later" (SageMaker, S3, Polly).
TRANSIENT_AWS_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailable",
     "ServiceUnavailableException", "ServiceFailureException", "InternalFailure", "InternalServerError",
     "ModelNotReadyException", "SlowDown", "RequestTimeout"}
)  # fmt: skip
# AWS error codes of a caller without the right credentials or permissions.
AUTH_AWS_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
     "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch"}
)  # fmt: skip


class NarrateError(Exception):
    """Base of every error narrate raises on purpose."""

    exit_code = 1


class ProblemList(NarrateError):
    """An input failed validation; ``problems`` holds one line per field, all reported at once."""

    exit_code = 2

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{listing}")


class ScriptError(ProblemList):
    """The narration script failed validation."""


class ClipRejected(ProblemList):
    """``narrate voice add``: the recording cannot be decoded, or its clip failed checks (one line each,
    with what to do); nothing was written."""


class ConfigError(NarrateError):
    exit_code = 2


class EndpointError(NarrateError):
    exit_code = 5


class ModelNotLoaded(EndpointError):
    """The endpoint answers, but its model_fn failed: every request is refused with the load error
    (the container toolkit keeps such an instance in service). Nothing else is sent."""

    def __init__(self, message: str) -> None:
        super().__init__(
            f"the endpoint's model did not load, so it refuses every request; nothing more was sent and "
            f"the endpoint was scaled to zero. Its error: {message}. Fix that setting, `narrate deploy` "
            "(or run again in local mode) and render again: finished segments are kept"
        )


class SynthesisError(NarrateError):
    transient = False


class TransientSynthesisError(SynthesisError):
    transient = True


class OutputInvalid(TransientSynthesisError):
    """The output is not decodable audio at the expected rate (possibly truncated), or not plausible."""


class SegmentRejected(SynthesisError):
    transient = False


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


class CheckFailed(NarrateError):
    """``narrate check`` did not hear some segments' words."""

    exit_code = 7

    def __init__(self, segment_ids: list[str], report_path: str) -> None:
        self.segment_ids = segment_ids
        super().__init__(
            f"{len(segment_ids)} segment(s) do not say their script's words as far as the recogniser can "
            f"hear: {', '.join(segment_ids)}. Listen to them; {report_path} has what was heard"
        )


class VideoError(NarrateError):
    exit_code = 6


class MarksError(ProblemList, VideoError):
    """The scene marks failed validation."""

    exit_code = 2


class VideoDriftError(VideoError):
    """A measured scene of the rendered MP4 is more than one frame off its timeline."""

    exit_code = 3


class ProvenanceError(NarrateError):
    exit_code = 8


class VerificationFailed(ProvenanceError):
    """``narrate verify``: some files' Content Credentials did not verify; one line per file, why."""

    def __init__(self, failed: dict[str, str]) -> None:
        self.failed = failed
        lines = "\n".join(f"  - {name}: {why}" for name, why in failed.items())
        super().__init__(f"{len(failed)} file(s) did not verify:\n{lines}")


def transient_status(status: int) -> bool:
    """An HTTP status (of an AWS answer or an async failure object) that may pass on a retry."""
    return status >= 500 or status == 429


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same call may succeed: narrate's transient errors, timeouts, lost
    connections, and AWS's throttling and server errors. Prefect's retry condition, the endpoints'
    classification of AWS errors and Polly's all ask this."""
    if isinstance(exc, SynthesisError):
        return exc.transient
    if isinstance(exc, TimeoutError | ConnectionError | BotoConnectionError | ReadTimeoutError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error.get("Code", "") in TRANSIENT_AWS_CODES or transient_status(status)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return False  # no credentials now, none on the next try
    return isinstance(exc, BotoCoreError)


def is_auth_error(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code", "") in AUTH_AWS_CODES
