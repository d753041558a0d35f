"""Run a benchmark: ``python -m bench critical-path|model-server [--smoke] [--runs N]``."""

from __future__ import annotations

import argparse
import sys

from bench import critical_path, model_server

BENCHMARKS = {"critical-path": critical_path.main, "model-server": model_server.main}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--smoke", action="store_true", help="small sizes, no targets asserted (CI)")
    parser.add_argument("--runs", type=int, default=None, help="repetitions (median reported)")
    parser.add_argument("--frames", type=int, default=None, help="model-server: codec frames a segment")
    args = parser.parse_args(argv)
    extra = {"frames": args.frames} if args.frames else {}
    return BENCHMARKS[args.name](smoke=args.smoke, runs=args.runs, **extra)


if __name__ == "__main__":
    sys.exit(main())
