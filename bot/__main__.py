"""`python -m bot`: the same as the `hailuo-bot` command."""

from __future__ import annotations

import sys

from bot.cli import main

sys.exit(main())
