"""The ``mfgp`` command line: ``mfgp demo``, ``mfgp data``, ``mfgp featurize``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def _data(args: argparse.Namespace) -> int:
    from mfgp.data import MultiFidelityDataset
    from mfgp.datasets import load_bandgap_ladder, load_formation_enthalpy

    loader = {"bandgap": load_bandgap_ladder, "formation": load_formation_enthalpy}[args.dataset]
    t0 = time.perf_counter()
    df = loader()
    ds = MultiFidelityDataset.from_frame(df, featurizer=args.preset)
    print(f"{ds}  (loaded and featurized in {time.perf_counter() - t0:.1f} s)")
    print(ds.summary().round(3).to_string())
    return 0


def _featurize(args: argparse.Namespace) -> int:
    import pandas as pd

    from mfgp.featurize import CompositionFeaturizer

    df = pd.read_csv(args.input, keep_default_na=False)
    out = CompositionFeaturizer(args.preset).featurize_dataframe(df, args.column, errors="mask")
    bad = (~out["featurized"]).sum()
    from mfgp._io import atomic_write

    with atomic_write(args.output) as fh:
        out.to_csv(fh, index=False)
    print(f"wrote {len(out)} rows ({bad} failed, see column 'error') to {args.output}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mfgp.demo import run_demo

    return run_demo(fast=args.fast, quiet=args.quiet)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mfgp`` console script."""
    parser = argparse.ArgumentParser(prog="mfgp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit the multi-fidelity band-gap model on shipped data")
    p.add_argument("--fast", action="store_true", help="fewer folds and iterations")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)
    p = sub.add_parser("data", help="summarise a shipped multi-fidelity dataset")
    p.add_argument("dataset", choices=["bandgap", "formation"])
    p.add_argument("--preset", default="magpie")
    p.set_defaults(func=_data)
    p = sub.add_parser("featurize", help="featurize a CSV of formulas")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--column", default="formula")
    p.add_argument("--preset", default="magpie")
    p.set_defaults(func=_featurize)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
