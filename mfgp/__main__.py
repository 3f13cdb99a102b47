"""``python -m mfgp``: the command line."""

from mfgp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
