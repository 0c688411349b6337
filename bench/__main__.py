"""`python -m bench import|evaluate|dispatch|backtest|inbound|replies|stats|slash …`."""

from __future__ import annotations

import sys

BENCHMARKS = {
    "import": "bench.import_book",
    "evaluate": "bench.evaluate",
    "dispatch": "bench.dispatch",
    "backtest": "bench.backtest",
    "inbound": "bench.inbound",
    "replies": "bench.replies",
    "stats": "bench.stats",
    "slash": "bench.slash",
}


def main() -> None:
    """Run one benchmark by name."""
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        sys.exit(f"usage: python -m bench {{{'|'.join(BENCHMARKS)}}} [options]")
    import importlib

    importlib.import_module(BENCHMARKS[sys.argv[1]]).main(sys.argv[2:])


if __name__ == "__main__":
    main()
