"""The one settings object, read once from ``NARRATE_*`` environment variables (see ``.env.example``).

Read at the boundaries (the flows, the CLI; the container reads its own :class:`ServerConfig`) and
passed down: nothing below them calls :func:`get_settings`.
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model_server.config import DEFAULT_BASE_MODEL, DEFAULT_CUSTOM_VOICE_MODEL, ServerConfig
from narrate.endpoints.kind import Backend, EndpointKind
from narrate.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NARRATE_", env_file=".env", extra="ignore")

    cache_dir: Path = Field(
        Path(".narrate/cache"),
        description="Content-addressed clip cache (one WAV per cache key). Safe to share between renders.",
    )
    state_dir: Path = Field(
        Path(".narrate/state"),
        description="Working area of the local endpoint (request, output and failure objects).",
    )
    renders_dir: Path = Field(
        Path("renders"), description="Default parent folder of render outputs (renders/<script name>/)."
    )
    backend: Backend = Field(
        EndpointKind.SAGEMAKER,
        description="Which endpoint serves synthesis: 'sagemaker' (an async endpoint, real or local mode) "
        "or 'inprocess' (the handler in this process, no AWS at all).",
    )
    aws: Literal["local", "real"] = Field(
        "local", description="'local' starts the embedded AWS on 127.0.0.1; 'real' uses your AWS account."
    )
    prefect_server: Literal["background", "temporary"] = Field(
        "background",
        description="Without PREFECT_API_URL, the CLI's Prefect server: 'background' starts one local server "
        "on first use and reuses it (narrate server status|stop); 'temporary' lets Prefect start one per "
        "command (10-40 s each, nothing left running).",
    )
    max_segment_chars: int = Field(
        1500, ge=1, description="Longest segment text accepted by validation, in characters."
    )
    batch_size: int = Field(8, ge=1, le=256, description="Segments per synthesis request.")
    max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per segment for transient failures (first try included)."
    )
    retry_base_seconds: float = Field(
        1.0, ge=0, description="First back-off delay between synthesis attempts (doubles, with jitter)."
    )

    # --- the quality gate (narrate.check.gate): every take measured, judged, re-rolled when it fails ---
    gate_checks: str = Field(
        "duration,silence,clipping,level,frame_cap,similarity,words",
        description="The checks every take must pass (comma list; 'none' turns the gate off): duration, "
        "silence, clipping, level, frame_cap, similarity (clones), words (the offline recogniser).",
    )
    gate_min_duration_ratio: float = Field(
        0.4, ge=0, description="Shortest speaking time, as a share of what the text takes at its pace."
    )
    gate_max_duration_ratio: float = Field(
        2.5, gt=0, description="Longest speaking time, as a multiple of it (plus one second)."
    )
    gate_max_pause_seconds: float = Field(
        1.5, gt=0, description="Longest silence inside a take (plus the voice's own sentence silence)."
    )
    gate_max_clipped_share: float = Field(0.001, ge=0, le=1, description="Share of samples clipped.")
    gate_min_lufs: float = Field(-45.0, description="Quietest take, LUFS.")
    gate_max_lufs: float = Field(-5.0, description="Loudest take, LUFS.")
    gate_min_similarity: float = Field(
        0.5, ge=-1, le=1, description="A clone's take against its reference clip (speaker-embedding cosine)."
    )
    gate_min_words_heard: float = Field(
        0.2, ge=0, le=1, description="Share of a take's words the offline recogniser must hear (English)."
    )

    # --- the SageMaker async endpoint ---
    region: str = Field("us-east-1", description="AWS region of the endpoint and bucket.")
    endpoint_name: str = Field("narrate-tts", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,40}$")
    bucket: str = Field("narrate-local", description="S3 bucket for models, requests and outputs.")
    s3_prefix: str = Field("narrate", description="Key prefix of everything narrate writes to S3.")
    create_bucket: bool = Field(True, description="Create the bucket (private, encrypted) if missing.")
    kms_key_id: str | None = Field(None, description="KMS key for S3 objects and async outputs.")
    role_arn: str = Field(
        "arn:aws:iam::123456789012:role/narrate-endpoint", description="Execution role of the endpoint."
    )
    image_uri: str | None = Field(
        None,
        description="Container image; default the SageMaker SDK's Hugging Face PyTorch inference image for "
        "the region (narrate.aws.images).",
    )
    model_data_url: str | None = Field(
        None, description="model.tar.gz in S3; default s3://<bucket>/<prefix>/model/model.tar.gz."
    )
    instance_type: str = Field("ml.g5.xlarge", description="Instance type of the endpoint.")
    max_instances: int = Field(
        1, ge=1, le=20, description="Autoscaling MaxCapacity: the most instances a render fans out over."
    )
    instance_throughput: float = Field(
        10.0,
        gt=0,
        description="Seconds of speech one instance synthesises a second, for sizing a render's instances "
        "(narrate.endpoints.capacity): 25 measured for the 1.7B clone on an H100 (docs/BENCHMARKS.md, "
        "model-server); 10 assumes an ml.g5.xlarge (A10G, not measured) at 40 % of that.",
    )
    cold_start_seconds: float | None = Field(
        None,
        ge=0,
        description="Expected start of one instance from zero, which the sizing weighs against the work; "
        "default NARRATE_LOCAL_COLD_START_SECONDS in local mode, 240 s with real AWS (`narrate endpoint "
        "wake` logs the measured one).",
    )
    max_concurrent_invocations: int = Field(2, ge=1, le=1000, description="Per instance.")
    engines: str = Field(
        ServerConfig().engines, description="Engines the container loads: dev, piper, qwen (comma list)."
    )
    qwen_custom_voice_model: str = Field(
        DEFAULT_CUSTOM_VOICE_MODEL, description="CustomVoice checkpoint: a directory or hub id; 'none' = off."
    )
    qwen_base_model: str = Field(DEFAULT_BASE_MODEL, description="Base (clone) checkpoint; 'none' = off.")
    qwen_voice_design_model: str = Field("none", description="VoiceDesign checkpoint; 'none' = off.")
    qwen_device: str = Field("auto", description="Device of the Qwen models: auto, cpu, cuda:0.")
    qwen_fast_decode: bool = Field(True, description="Lean code-predictor loop (same output, faster).")
    qwen_cuda_graphs: bool = Field(True, description="On a GPU, replay that loop as CUDA graphs.")
    qwen_batch_size: int = Field(16, ge=1, le=256, description="Most segments in one generate call.")
    qwen_batch_frames: int = Field(12000, ge=1, description="Batch size x longest frame cap allowed.")
    qwen_max_segment_seconds: float = Field(120, gt=0, le=3600, description="Hard cap on one segment.")
    ref_audio_allowed_hosts: str = Field("", description="Hosts an http(s) reference clip may come from.")
    success_topic_arn: str | None = Field(None, description="SNS topic notified of each output.")
    error_topic_arn: str | None = Field(None, description="SNS topic notified of each failure.")
    hourly_price_usd: float | None = Field(
        None, ge=0, description="Instance price per hour, for the cost report; default narrate's table."
    )
    tags: str = Field(
        "project=narrate",
        description="Tags on everything narrate creates in AWS (key=value, comma-separated), for cost "
        "attribution; the endpoint's name is added as narrate:endpoint.",
    )
    quota_check: bool = Field(True, description="Deploy checks the instance quota before creating anything.")
    wake_deadline_seconds: float = Field(900, gt=0, description="Longest wait for an instance.")
    hold_seconds: float = Field(
        900,
        ge=5,
        description="A render holds the endpoint this long and renews it every third of it; if the render "
        "dies, AWS itself releases the instance when the hold runs out (a scheduled action). AWS runs "
        "scheduled actions up to a minute late: keep it >= 300 against real AWS.",
    )
    output_deadline_seconds: float = Field(3600, gt=0, description="Longest wait for one request's output.")
    invocation_timeout_seconds: int = Field(3600, ge=1, le=3600)
    request_ttl_seconds: int = Field(21600, ge=60, le=21600)

    # --- provenance: C2PA Content Credentials in narration.wav/.mp3 and video.mp4 (narrate.provenance) ---
    provenance: Literal["auto", "off"] = Field(
        "auto",
        description="'auto' signs every render when a certificate is configured or `narrate provenance "
        "init` made a development one in provenance_dir; 'off' never signs.",
    )
    provenance_dir: Path = Field(
        Path(".narrate/provenance"),
        description="Where `narrate provenance init` writes the (untrusted) development certificate.",
    )
    provenance_certificate: Path | None = Field(
        None, description="PEM certificate chain of the signing key: its certificate, then intermediates."
    )
    provenance_private_key: Path | None = Field(
        None, description="PEM private key of that certificate (keep it 0600; it is never copied or logged)."
    )
    provenance_kms_key_id: str | None = Field(
        None, description="Sign with this AWS KMS key (SIGN_VERIFY, ECC_NIST_P256/384/521 or RSA) instead."
    )
    provenance_sign_callback: str | None = Field(
        None, description="Or sign with package.module:function (bytes -> signature), e.g. for an HSM."
    )
    provenance_tsa_url: str | None = Field(
        None, description="RFC 3161 timestamp authority: a trusted signing time in each manifest."
    )
    provenance_trust_anchors: Path | None = Field(
        None,
        description="PEM roots that `narrate verify` (and the check after signing) trust; this machine's "
        "development root is added when there is one.",
    )
    require_provenance: bool | None = Field(
        None,
        description="Refuse to render a qwen-clone voice unsigned; default on with --aws real, off in "
        "local mode.",
    )

    # --- deployments (narrate serve) ---
    weekly_script: str = Field(
        "examples/demo.yaml", description="Script of the weekly-render deployment: a path or s3:// URI."
    )
    weekly_out_dir: str | None = Field(
        None, description="Outputs of the weekly render; default renders/<name>/."
    )
    weekly_cron: str = Field(
        "0 6 * * 1", description="Schedule of the weekly render (cron; default Monday 06:00)."
    )
    schedule_timezone: str = Field("UTC", description="IANA timezone of the schedule, e.g. Europe/London.")

    # --- local mode (the embedded AWS) ---
    local_cold_start_seconds: float = Field(
        3.0, ge=0, description="Simulated instance launch + model load in local mode."
    )
    local_time_scale: float = Field(
        1.0, gt=0, description="Multiplies autoscaling alarm periods and cooldowns in local mode."
    )

    def server_config(self) -> ServerConfig:
        """The container's configuration, from the same NARRATE_* names it reads itself."""
        names = {f.name for f in fields(ServerConfig)} & set(type(self).model_fields)
        return ServerConfig(**{name: getattr(self, name) for name in names})

    def tag_list(self) -> list[dict[str, str]]:
        """NARRATE_TAGS as AWS tags, with the endpoint's name; a malformed entry is a ConfigError."""
        tags: dict[str, str] = {}
        for entry in filter(None, (e.strip() for e in self.tags.split(","))):
            key, equals, value = entry.partition("=")
            if not equals or not key.strip():
                raise ConfigError(
                    f"NARRATE_TAGS: {entry!r} is not key=value; write e.g. project=narrate,team=docs"
                )
            tags[key.strip()] = value.strip()
        tags["narrate:endpoint"] = self.endpoint_name
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    @property
    def model_data(self) -> str:
        return self.model_data_url or f"s3://{self.bucket}/{self.s3_prefix}/model/model.tar.gz"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
