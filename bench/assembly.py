"""Assembly of a long track: clips trimmed, laid out, normalised, written as WAV + MP3 + captions +
timeline, against the bare cost of reading the same clips and writing them as one WAV; and the same
assembly with the WAV and MP3 signed (C2PA Content Credentials, a development certificate), against
unsigned in the same run.

The clips (speech-like, 24 kHz, 5-7 s with silent edges) are written once into a clip cache; each
run is a child process (peak RSS from ``/usr/bin/time -v``) that calls the ``assemble-track`` task
body (``assemble_track.fn``: no Prefect run). Targets (full mode: 1 hour in 600 clips): <= 10 s and
< 1 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from bench.common import SENTENCES, median, run_child, speech_like_clip, verdict

RATE = 24000
TARGET_SECONDS = 10.0
TARGET_PEAK_RSS_MB = 1024.0


@dataclass(frozen=True)
class Corpus:
    script: Path
    cache_dir: Path
    clip_samples: int


def clip_lengths(clips: int, total_samples: int) -> list[int]:
    """Clip lengths varying by +-1/6 around the mean that sums exactly to ``total_samples``."""
    mean = total_samples // clips
    lengths = [mean + round(mean / 6 * np.sin(i * 2.399)) for i in range(clips)]
    lengths[-1] += total_samples - sum(lengths)
    return lengths


def make_corpus(work: Path, clips: int, minutes: float) -> Corpus:
    """A script of ``clips`` segments and a clip cache holding one clip per segment."""
    from narrate.synthesis.cache import ClipCache

    rows = [{"id": f"s{i:04d}", "text": f"Step {i}. {SENTENCES[i % len(SENTENCES)]}"} for i in range(clips)]
    data = {
        "title": "Assembly benchmark",
        "voice": {"engine": "dev", "language": "en"},
        "output": {"sample_rate": RATE, "formats": ["wav", "mp3"]},
        "segments": rows,
    }
    script = work / "assembly.yaml"
    script.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    cache = ClipCache(work / "cache")
    total = round(minutes * 60 * RATE)
    for index, (row, samples) in enumerate(zip(rows, clip_lengths(clips, total), strict=True)):
        path = cache.path(_key(row["id"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, speech_like_clip(samples, RATE, seed=index), RATE, subtype="PCM_16")
    return Corpus(script, work / "cache", total)


def _key(segment_id: str) -> str:
    import hashlib

    return hashlib.sha256(segment_id.encode()).hexdigest()


def assemble(script: Path, cache_dir: Path, out: Path, mp3: bool = True, signing: Any = None) -> float:
    """The assemble-track task body on the corpus (``mp3=False``: WAV only; ``signing``: the outputs
    signed); wall seconds."""
    from model_server.config import ServerConfig
    from narrate.script import load_script, normalize_text
    from narrate.synthesis.requests import model_identity
    from tasks.assembly import TrackPlan, assemble_track
    from tasks.script import PlannedSegment

    narration = load_script(script)
    if not mp3:
        output = narration.output.model_copy(update={"formats": ["wav"]})
        narration = narration.model_copy(update={"output": output})
    plan = [PlannedSegment(s.id, normalize_text(s.text), _key(s.id)) for s in narration.segments]
    started = time.perf_counter()
    identity = model_identity(narration.voice, ServerConfig(), "local")
    track = TrackPlan(narration, plan, identity, signing=signing, script_sha256=_key(str(script)))
    outputs = assemble_track.fn(track, cache_dir, out)
    seconds = time.perf_counter() - started
    expected = {"wav", "srt", "vtt", "timeline"} | ({"mp3"} if mp3 else set())
    assert expected | ({"provenance"} if signing else set()) <= set(outputs), outputs
    return seconds


def assemble_signed(script: Path, cache_dir: Path, out: Path) -> float:
    """``assemble`` with the WAV and MP3 signed and read back; the certificate is made before the clock."""
    from narrate.provenance.config import Signing, TrustList
    from narrate.provenance.devcert import create_development_certificate
    from narrate.provenance.keys import SigningKey

    made = create_development_certificate(out.with_name(out.name + "-certificate"))
    key = SigningKey(made.chain, private_key=made.private_key)
    signing = Signing(key, TrustList(made.root.read_text(), ("bench",)), development=True)
    return assemble(script, cache_dir, out, signing=signing)


def assemble_wav_only(script: Path, cache_dir: Path, out: Path) -> float:
    return assemble(script, cache_dir, out, mp3=False)


def copy_clips(script: Path, cache_dir: Path, out: Path) -> float:
    """The bare cost: read every clip, write them one after another as one WAV; wall seconds."""
    from narrate.synthesis.cache import ClipCache

    ids = [s["id"] for s in yaml.safe_load(script.read_text())["segments"]]
    cache = ClipCache(cache_dir)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(out / "copy.wav", "w", samplerate=RATE, channels=1, subtype="PCM_16") as target:
        for segment_id in ids:
            target.write(cache.get(_key(segment_id)).audio)
    return time.perf_counter() - started


WAYS = {"assemble": assemble, "assemble-signed": assemble_signed, "assemble-wav": assemble_wav_only,
        "copy": copy_clips}  # fmt: skip


@dataclass(frozen=True)
class WayResult:
    seconds: list[float]
    peak_rss_mb: list[float]


def measure(way: str, corpus: Corpus, work: Path, runs: int) -> WayResult:
    seconds, peaks = [], []
    for run in range(runs):
        args = ["--child", way, "--script", str(corpus.script), "--cache", str(corpus.cache_dir)]
        result = run_child("bench.assembly", [*args, "--out", str(work / f"{way}-{run}")])
        seconds.append(result.data["seconds"])
        peaks.append(result.peak_rss_mb)
    return WayResult(seconds, peaks)


def main(smoke: bool = False, runs: int | None = None, minutes: float | None = None) -> int:
    minutes = minutes or (2.0 if smoke else 60.0)
    clips = 20 if smoke else 600
    runs = runs or (1 if smoke else 3)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        corpus = make_corpus(work, clips, minutes)
        baseline = measure("copy", corpus, work, runs)
        wav_only = measure("assemble-wav", corpus, work, runs)
        assembled = measure("assemble", corpus, work, runs)
        signed = measure("assemble-signed", corpus, work, runs)
    seconds, base = median(assembled.seconds), median(baseline.seconds)
    peak, base_peak = median(assembled.peak_rss_mb), median(baseline.peak_rss_mb)
    audio_mb = corpus.clip_samples * 4 / 2**20
    time_met, memory_met = seconds <= TARGET_SECONDS, peak < TARGET_PEAK_RSS_MB
    print(f"assembly, {minutes:g} min of {RATE} Hz speech in {clips} clips -> WAV + MP3 + captions + "
          f"timeline, {runs} run(s) (medians; the float32 audio is {audio_mb:.0f} MB):")  # fmt: skip
    print(f"  read + write the clips (baseline)  {base:7.2f} s   peak RSS {base_peak:6.0f} MB")
    wav_seconds, wav_peak = median(wav_only.seconds), median(wav_only.peak_rss_mb)
    print(f"  assemble-track, WAV only (no MP3)   {wav_seconds:7.2f} s   peak RSS {wav_peak:6.0f} MB   "
          f"ratio {wav_seconds / base:.2f}")  # fmt: skip
    print(f"  assemble-track                      {seconds:7.2f} s   peak RSS {peak:6.0f} MB   "
          f"ratio {seconds / base:.2f}")  # fmt: skip
    signed_seconds, signed_peak = median(signed.seconds), median(signed.peak_rss_mb)
    print(f"  assemble-track, signed (C2PA)       {signed_seconds:7.2f} s   peak RSS {signed_peak:6.0f} MB   "
          f"ratio {signed_seconds / base:.2f}; signing adds {signed_seconds - seconds:+.2f} s "
          f"({signed_seconds / seconds:.2f} x unsigned)")  # fmt: skip
    print(f"  time target <= {TARGET_SECONDS:g} s: {verdict(time_met)}; peak RSS target < "
          f"{TARGET_PEAK_RSS_MB:g} MB: {verdict(memory_met)}")  # fmt: skip
    print(f"  runs: assemble {', '.join(f'{s:.2f}' for s in assembled.seconds)} s "
          f"({', '.join(f'{m:.0f}' for m in assembled.peak_rss_mb)} MB); baseline "
          f"{', '.join(f'{s:.2f}' for s in baseline.seconds)} s; WAV only "
          f"{', '.join(f'{s:.2f}' for s in wav_only.seconds)} s; signed "
          f"{', '.join(f'{s:.2f}' for s in signed.seconds)} s")  # fmt: skip
    if smoke:
        print("  smoke mode: small sizes, targets reported but not asserted")
        return 0
    return 0 if time_met and memory_met else 1


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.assembly")
    parser.add_argument("--child", choices=sorted(WAYS), required=True)
    parser.add_argument("--script", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args()


if __name__ == "__main__":
    options = _parse()
    print(json.dumps({"seconds": WAYS[options.child](options.script, options.cache, options.out)}))
