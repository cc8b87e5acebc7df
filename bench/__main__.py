"""Attune's benchmarks: ``./attune bench NAME [args]`` (or ``python -m bench NAME``).

Each benchmark is a module ``bench/NAME.py`` with ``main(argv: list[str]) -> int`` that prints its
figures. ``./attune bench`` with no name lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: ./attune bench NAME [options]\n\nbenchmarks:")
        for name in names:
            doc = (importlib.import_module(f"bench.{name}").__doc__ or "").strip().splitlines()
            print(f"  {name:<14} {doc[0] if doc else ''}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"unknown benchmark {name!r}; choose one of: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
