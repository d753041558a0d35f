"""Every file a render writes into its folder, by name, and reading a render's folder back.

The report, the CLI and the flows read a render through :class:`RenderFolder`, never by spelling a
file name or parsing ``timeline.json`` as a dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from narrate.manifest import RenderManifest
from narrate.provenance.record import ProvenanceRecord, load_provenance
from narrate.track.timeline import Timeline

WAV = "narration.wav"
MP3 = "narration.mp3"
TIMELINE = "timeline.json"
TIMELINE_PNG = "timeline.png"  # the timeline picture (narrate.review.picture)
REVIEW = "review.html"  # the page to look at and listen to the render (narrate.review.page)
SRT = "captions.srt"
VTT = "captions.vtt"
VIDEO = "video.mp4"
VIDEO_REPORT = "video.report.json"
CHECK = "check.json"  # narrate check's result
LOG = "render.log"  # the CLI's log lines of the renders into this folder (appended)
PROVENANCE = "provenance.json"  # each signed output's verification (narrate.provenance.record)
MANIFEST = RenderManifest.FILE_NAME
# The outputs a render lists in its manifest, by kind.
OUTPUT_FILES = {"wav": WAV, "mp3": MP3, "srt": SRT, "vtt": VTT, "picture": TIMELINE_PNG, "timeline": TIMELINE,
                "video": VIDEO, "review": REVIEW,
                "provenance": PROVENANCE}  # fmt: skip


@dataclass(frozen=True)
class RenderFolder:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def timeline_path(self) -> Path:
        return self.path / TIMELINE

    @property
    def check_path(self) -> Path:
        return self.path / CHECK

    @property
    def log_path(self) -> Path:
        return self.path / LOG

    @property
    def provenance_path(self) -> Path:
        return self.path / PROVENANCE

    def file(self, kind: str) -> Path:
        """Where the output of this kind (wav, mp3, srt, vtt, timeline, video) is written."""
        return self.path / OUTPUT_FILES[kind]

    def manifest(self) -> RenderManifest:
        return RenderManifest.load(self.manifest_path)

    def timeline(self) -> Timeline:
        return Timeline.model_validate_json(self.timeline_path.read_text(encoding="utf-8"))

    def has_timeline(self) -> bool:
        return self.timeline_path.is_file()

    def provenance(self) -> ProvenanceRecord | None:
        """How each signed output verified right after signing; None when the render was not signed."""
        return load_provenance(self.provenance_path)
