"""``python -m bpm.cli``: the ``bpm`` command."""

from __future__ import annotations

import sys

from .main import command

sys.exit(command())
