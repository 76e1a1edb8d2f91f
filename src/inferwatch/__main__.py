"""``python -m inferwatch``: the same as the ``inferwatch`` command."""

from __future__ import annotations

from inferwatch.cli import main

if __name__ == "__main__":
    main()
