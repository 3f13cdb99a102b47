"""Execute the numbered examples into their paired notebooks (``make notebooks``).

Each ``examples/NN_name.py`` (a jupytext percent script, the file that is edited and diffed)
becomes ``examples/NN_name.ipynb``: the same cells, executed in a fresh kernel, with their
outputs (figures as PNG). One notebook at a time, each written only when it ran to the end, so
an interrupted run keeps every notebook it finished; ``NB=...`` reruns the rest.

    python examples/run_notebooks.py                 # all, each in its default mode
    python examples/run_notebooks.py --mode fast 03 04   # two of them, fast mode
    python examples/run_notebooks.py --mode full     # all in full mode (hours on 2 cores)

The default mode is full for the examples that take a few minutes that way on 2 CPU cores
(``FULL``), the fast mode (``MFGP_FAST=1``: a subsample, few iterations) for the others.

The first cell of every example prints the mode, so a stored notebook says which mode made
its outputs. ``tests/test_notebooks.py`` checks that every notebook's code is its script's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: how the pair is kept: no YAML header or cell metadata in the scripts (see jupytext.toml)
JUPYTEXT = {"formats": "ipynb,py:percent", "notebook_metadata_filter": "-all",
            "cell_metadata_filter": "-all"}  # fmt: skip
KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: the examples run in full mode by default (a few minutes each on 2 CPU cores)
FULL = {"05", "06"}


def examples(names: list[str]) -> list[Path]:
    """The scripts to run: all numbered ones, or those whose name starts with one of ``names``."""
    found = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if not names:
        return found
    chosen = [p for p in found if any(p.stem.startswith(n) for n in names)]
    unknown = [n for n in names if not any(p.stem.startswith(n) for p in found)]
    if unknown:
        sys.exit(f"no example matches {unknown}; the examples are {[p.stem for p in found]}")
    return chosen


def notebook_of(script: Path):
    """The script's cells as a notebook with the pairing and kernel metadata (no outputs)."""
    import jupytext

    nb = jupytext.read(script, fmt="py:percent")
    nb.metadata = {"jupytext": dict(JUPYTEXT), "kernelspec": dict(KERNEL),
                   "language_info": {"name": "python"}}  # fmt: skip
    for k, cell in enumerate(nb.cells):
        cell.id = f"{script.stem[:2]}-{k:02d}"  # stable ids: a rerun diffs by its outputs only
        cell.metadata = {}
    return nb


def execute(script: Path, mode: str, timeout: int) -> float:
    """Run one example in a fresh kernel and write its notebook; returns the seconds taken."""
    import nbformat
    from nbclient import NotebookClient

    nb = notebook_of(script)
    env = {"MFGP_QUIET": "1",  # no progress bars in the stored outputs
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}  # figures as outputs
    if mode == "fast":
        env["MFGP_FAST"] = "1"
    saved = {k: os.environ.get(k) for k in (*env, "MFGP_FAST", "MFGP_FIGURES")}
    os.environ.pop("MFGP_FAST", None)
    os.environ.pop("MFGP_FIGURES", None)  # in a notebook the figures are outputs, not files
    os.environ.update(env)
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()  # fmt: skip
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for cell in nb.cells:
        cell.metadata = {}  # nbclient's execution timestamps
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}  # not the kernel's version details
    out = script.with_suffix(".ipynb")
    with tempfile.NamedTemporaryFile("w", dir=HERE, suffix=".ipynb.partial", delete=False,
                                     encoding="utf-8") as f:  # fmt: skip
        nbformat.write(nb, f)
    os.chmod(f.name, 0o644)
    os.replace(f.name, out)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Execute the chosen examples one after another; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    parser.add_argument("names", nargs="*", help="example prefixes, e.g. 03 or 03_experts")
    parser.add_argument("--mode", choices=["auto", "fast", "full"], default="auto",
                        help=f"fast: MFGP_FAST=1, a smoke test; full: as written; auto (the "
                             f"default): full for {sorted(FULL)}, fast for the others")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    todo = examples(args.names)
    failed = []
    for i, script in enumerate(todo, 1):
        mode = args.mode
        if mode == "auto":
            mode = "full" if script.stem[:2] in FULL else "fast"
        print(f"[{i}/{len(todo)}] {script.stem}: executing ({mode} mode) ...", flush=True)
        try:
            seconds = execute(script, mode, args.timeout)
        except Exception as err:  # a failing cell: report it, keep the old notebook, go on
            failed.append(script.stem[:2])
            print(f"[{i}/{len(todo)}] {script.stem}: FAILED, notebook left as it was\n{err}",
                  flush=True)  # fmt: skip
            continue
        size = script.with_suffix(".ipynb").stat().st_size / 1e3
        print(f"[{i}/{len(todo)}] {script.stem}: done in {seconds:.0f} s, "
              f"wrote {script.stem}.ipynb ({size:.0f} kB)", flush=True)  # fmt: skip
    if failed:
        mode = "" if args.mode == "auto" else f" MODE={args.mode}"
        print(f"failed: {failed}; rerun them with: make notebooks NB=\"{' '.join(failed)}\"{mode}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
