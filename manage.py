#!/usr/bin/env python
"""Django's command-line utility for Attune (``./attune manage ...`` sets up the environment)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> None:
    # The project package is platform/attune, so that it never hides the stdlib `platform`.
    sys.path.insert(1, str(ROOT / "platform"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
