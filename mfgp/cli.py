"""The ``mfgp`` command line: ``mfgp demo``, ``data``, ``featurize``, ``campaign``."""

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


def _campaign(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from mfgp.exceptions import MfgpError
    from mfgp.loop import Campaign

    try:
        if args.action == "init":
            from mfgp.estimators import MultiFidelityRegressor

            costs = {}
            for item in args.cost:
                name, _, value = item.partition("=")
                costs[name] = float(value)
            pool = pd.read_csv(args.pool, keep_default_na=False)
            data = pd.read_csv(args.data, keep_default_na=False) if args.data else None
            options = json.loads(args.objective_options) if args.objective_options else {}
            model = MultiFidelityRegressor(args.architecture)
            Campaign(model, pool, target=args.target, costs=costs, objective=args.objective,
                     objective_options=options, data=data, store=args.store,
                     seed=args.seed).close()  # fmt: skip
            print(f"created campaign {args.store}: {len(pool)} candidates, costs {costs}")
            return 0
        with Campaign.open(args.store) as camp:
            if args.action == "suggest":
                batch = camp.suggest(args.q)
                text = batch.to_csv(index=False)
                if args.output:
                    from mfgp._io import atomic_write

                    with atomic_write(args.output) as fh:
                        fh.write(text)
                print(batch.to_string(index=False))
            elif args.action == "observe":
                rows = camp.observe(pd.read_csv(args.results, keep_default_na=False))
                print(f"recorded {len(rows)} observations; {len(camp.pending())} pending")
            else:
                print(json.dumps(camp.status(), indent=1))
    except MfgpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


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
    p = sub.add_parser("campaign", help="plan experiments: init, suggest, observe, status")
    p.add_argument("action", choices=["init", "suggest", "observe", "status"])
    p.add_argument("store", help="the campaign's SQLite file")
    p.add_argument("--pool", help="init: CSV with a formula column (the candidates)")
    p.add_argument("--data", help="init: CSV of known rows (formula, fidelity, value)")
    p.add_argument("--cost", action="append", default=[],
                   help="init: FIDELITY=COST, low to high, the target last (repeat)")
    p.add_argument("--target", help="init: the target fidelity (default: the last cost)")
    p.add_argument("--objective", default="learn",
                   help="init: learn, kg, mes, window, ucb, std, greedy, logei")
    p.add_argument("--objective-options", help='init: JSON, e.g. \'{"lo": 1.1, "hi": 1.7}\'')
    p.add_argument("--architecture", default="ar1", help="init: the regressor's architecture")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", type=int, default=1, help="suggest: batch size")
    p.add_argument("--output", help="suggest: also write the batch to this CSV")
    p.add_argument("--results", help="observe: CSV with formula, fidelity, value")
    p.set_defaults(func=_campaign)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
