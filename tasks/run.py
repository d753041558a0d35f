"""The one object a render of one voice works with: built once, at its start, and passed whole.

:func:`start_render` loads and plans the script with the run's overrides, works out which endpoint
speaks it and which model (so which cache keys), and writes the first manifest; from there the flow
and the tasks read everything they need from the :class:`RenderRun`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from narrate.endpoints import Backend, EndpointKind, endpoint_for
from narrate.log import run_logger
from narrate.manifest import RenderManifest, SegmentRecord, VideoRecord
from narrate.script import NarrationScript
from narrate.settings import Settings
from narrate.synthesis.requests import ModelIdentity, model_identity
from tasks.assembly import TrackPlan
from tasks.endpoint import holder_name
from tasks.script import PlannedSegment, ScriptOverrides, load_narration, plan_segments
from tasks.video import VideoPlan


@dataclass(frozen=True)
class RenderOptions:
    """What one render is asked to do beyond its script."""

    overrides: ScriptOverrides = field(default_factory=ScriptOverrides)
    video: VideoPlan | None = None  # re-time this recording to the narration (its actions kept whole)
    only: frozenset[str] | None = None  # a retry: synthesise only these segments
    earlier_errors: Mapping[str, str] = field(default_factory=dict)  # a retry: why the others failed

    def script_overrides(self) -> ScriptOverrides:
        """The overrides, with the recording's action lengths as each segment's least length."""
        if self.video is None:
            return self.overrides
        return replace(self.overrides, min_seconds=self.video.action_seconds)


@dataclass(frozen=True)
class RenderRun:
    narration: NarrationScript
    plan: list[PlannedSegment]
    manifest: RenderManifest
    endpoint: EndpointKind
    identity: ModelIdentity  # the model that speaks the voice: part of every cache key
    out: Path
    settings: Settings
    options: RenderOptions
    holder: str  # who holds the endpoint: this flow run

    def track(self, hits: set[str]) -> TrackPlan:
        """What the track is assembled from, once every segment is cached."""
        return TrackPlan(self.narration, self.plan, self.identity, frozenset(hits))

    def to_synthesise(self, hits: set[str]) -> list[PlannedSegment]:
        """The planned segments not in the cache (within ``only``), one per sound."""
        only = self.options.only
        unique: dict[str, PlannedSegment] = {}
        for planned in self.plan:
            if planned.cache_key not in hits and (only is None or planned.id in only):
                unique.setdefault(planned.cache_key, planned)
        return list(unique.values())


def start_render(
    script: str, out: Path, backend: Backend, options: RenderOptions, settings: Settings
) -> RenderRun:
    """The run of ``script`` into ``out``, its manifest written. A Polly voice is spoken by the
    ``polly`` endpoint whatever ``backend`` says; the manifest records that one."""
    overrides = options.script_overrides()
    narration = load_narration(script, overrides, settings.max_segment_chars)
    identity = model_identity(narration.voice, settings.server_config(), settings.aws)
    plan = plan_segments(narration, identity)
    endpoint = endpoint_for(narration.voice.engine, backend)
    video = options.video
    manifest = RenderManifest(
        script=str(script),
        script_sha256=hashlib.sha256(Path(script).read_bytes()).hexdigest(),
        title=narration.title,
        engine=narration.voice.engine.value,
        voice_engine=overrides.voice_engine.value if overrides.voice_engine else None,
        voice_name=overrides.voice_name,
        generation=overrides.generation,
        endpoint=endpoint,
        min_seconds=overrides.min_seconds or None,
        video=VideoRecord(recording=str(video.recording), marks=str(video.marks_path)) if video else None,
        emulated=identity.emulated,
        out_dir=str(out),
        segments=[SegmentRecord(id=p.id, cache_key=p.cache_key) for p in plan],
    )
    manifest.save()
    if identity.emulated:
        run_logger().warning("EMULATED: %s; the outputs are not Amazon Polly's voice and say so "
                             "(NARRATE_AWS=real renders with Polly)", identity.emulated)  # fmt: skip
    return RenderRun(narration, plan, manifest, endpoint, identity, out, settings, options, holder_name())
