#!/usr/bin/env python
"""Django's command-line utility for the example project.

Run it from anywhere, e.g. ``python example_project/manage.py runserver`` from the repository
root: the repository root goes on sys.path, so the app in the checkout is used even when it is
not pip-installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    # After the script's own directory (sys.path[0], which holds exampleproject/ and
    # marketplace/), before site-packages: the checkout wins over an installed copy.
    sys.path.insert(1, str(REPOSITORY_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
