"""Run a benchmark: ``python -m bench critical-path [--smoke] [--runs N]``."""

from __future__ import annotations

import argparse
import sys

from bench import critical_path

BENCHMARKS = {"critical-path": critical_path.main}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--smoke", action="store_true", help="small sizes, no targets asserted (CI)")
    parser.add_argument("--runs", type=int, default=None, help="repetitions (median reported)")
    args = parser.parse_args(argv)
    return BENCHMARKS[args.name](smoke=args.smoke, runs=args.runs)


if __name__ == "__main__":
    sys.exit(main())
