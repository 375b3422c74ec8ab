"""``python -m pytest_memguard.cli``: the ``memguard`` command."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
