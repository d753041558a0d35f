"""Run a benchmark: ``python -m bench NAME [--smoke] [--runs N]``; NAME is one of BENCHMARKS."""

from __future__ import annotations

import argparse
import importlib
import sys

# Imported only when chosen: the model-server benchmark runs on a GPU machine that has the model
# server's dependencies and not the orchestration side's (boto3, prefect).
BENCHMARKS = {
    "assembly": "bench.assembly",
    "cold-start": "bench.cold_start",
    "cli": "bench.cli",
    "critical-path": "bench.critical_path",
    "incremental": "bench.incremental",
    "model-server": "bench.model_server",
    "orchestration": "bench.orchestration",
    "voices": "bench.voices",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--smoke", action="store_true", help="small sizes, no targets asserted (CI)")
    parser.add_argument("--runs", type=int, default=None, help="repetitions (median reported)")
    parser.add_argument("--frames", type=int, default=None, help="model-server: codec frames a segment")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="orchestration: segment counts")
    parser.add_argument(
        "--segments", type=int, default=None, help="incremental, critical-path (comparison), voices: segments"
    )
    parser.add_argument(
        "--scale", type=float, default=None, help="critical-path: time scale of the comparison"
    )
    parser.add_argument("--minutes", type=float, default=None, help="assembly: minutes of speech")
    parser.add_argument(
        "--parts", type=int, nargs="+", default=None, help="critical-path: which parts (1 2 3; default all)"
    )
    args = parser.parse_args(argv)
    options = {
        "frames": args.frames,
        "sizes": args.sizes,
        "segments": args.segments,
        "minutes": args.minutes,
        "scale": args.scale,
        "parts": args.parts,
    }
    extra = {key: value for key, value in options.items() if value is not None}
    benchmark = importlib.import_module(BENCHMARKS[args.name])
    return benchmark.main(smoke=args.smoke, runs=args.runs, **extra)


if __name__ == "__main__":
    sys.exit(main())
