"""``python -m artifacts``: the same as the ``artifacts`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
