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
from narrate.provenance.config import Signing, render_signing
from narrate.script import NarrationScript
from narrate.settings import Settings
from narrate.synthesis.requests import ModelIdentity, model_identity
from narrate.takes import load_picks
from tasks.assembly import TrackPlan
from tasks.endpoint import holder_name
from tasks.quality import CacheLookup
from tasks.script import PlannedSegment, ScriptOverrides, load_narration, plan_segments, plan_take
from tasks.video import VideoPlan


@dataclass(frozen=True)
class RenderOptions:
    """What one render is asked to do beyond its script."""

    overrides: ScriptOverrides = field(default_factory=ScriptOverrides)
    video: VideoPlan | None = None  # re-time this recording to the narration (its actions kept whole)
    only: frozenset[str] | None = None  # a retry: synthesise only these segments
    earlier_errors: Mapping[str, str] = field(default_factory=dict)  # a retry: why the others failed
    alternatives: tuple[str, int] | None = None  # narrate takes: this many takes of this segment

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
    signing: Signing | None = None  # how its outputs are signed (Content Credentials); None: unsigned

    def with_plan(self, plan: list[PlannedSegment]) -> RenderRun:
        """The run with each segment at the take the cache look-up settled on."""
        return replace(self, plan=plan)

    def track(self) -> TrackPlan:
        """What the track is assembled from, once every segment has its take: the kept one of each."""
        records = {record.id: record for record in self.manifest.segments}
        plan = [replace(p, cache_key=records[p.id].cache_key) for p in self.plan]
        hits = frozenset(r.cache_key for r in records.values() if r.cache_hit)
        return TrackPlan(self.narration, plan, self.identity, hits, self.manifest.segments, self.signing,
                         self.manifest.script_sha256)  # fmt: skip

    def to_synthesise(self, lookup: CacheLookup) -> list[PlannedSegment]:
        """The takes the cache lacks (within ``only``; none of a segment whose every take failed), one
        per sound."""
        only = self.options.only
        unique: dict[str, PlannedSegment] = {}
        for planned in self.plan:
            wanted = only is None or planned.id in only
            if planned.cache_key not in lookup.hits and planned.id not in lookup.failed and wanted:
                unique.setdefault(planned.cache_key, planned)
        return list(unique.values())


def start_render(
    script: str, out: Path, backend: Backend, options: RenderOptions, settings: Settings
) -> RenderRun:
    """The run of ``script`` into ``out``, its manifest written. A Polly voice is spoken by the
    ``polly`` endpoint whatever ``backend`` says; the manifest records that one."""
    overrides = options.script_overrides()
    narration = load_narration(script, overrides, settings.max_segment_chars)
    signing = render_signing(settings, narration.voice)  # a clone that must be signed: refused here
    identity = model_identity(narration.voice, settings.server_config(), settings.aws)
    if options.alternatives is None:
        plan = plan_segments(narration, identity, load_picks(script))
    else:
        narration = narration.alternatives(*options.alternatives)
        plan = [plan_take(narration, identity, s, take) for take, s in enumerate(narration.segments, 1)]
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
    return RenderRun(
        narration, plan, manifest, endpoint, identity, out, settings, options, holder_name(), signing
    )
