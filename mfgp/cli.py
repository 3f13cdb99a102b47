"""The ``mfgp`` command line: what the Python API does, on files.

Verbs: ``fit``, ``predict``, ``evaluate``, ``reactions``, ``screen``, ``campaign``, ``demo``,
``data``, ``featurize``.

Examples:
    mfgp fit measured.csv --target expt -o gaps.mfgp
    mfgp predict gaps.mfgp formulas.csv -o predictions.csv
    mfgp evaluate measured.csv --folds 5 --plots figures/ --quantity 'band gap' --units eV
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


#: the shipped sets ``mfgp data`` knows: name -> (loader in mfgp.datasets, what it holds)
DATASETS = {
    "bandgap": ("load_bandgap_ladder", "band gaps, eV: PBE, SCAN, GLLB-SC, HSE, experiment"),
    "formation": ("load_formation_enthalpy", "formation enthalpies, eV/atom: OQMD, MP, "
                  "experiment (Kim 2017)"),
    "metallicity": ("load_metallicity", "metal (1) / non-metal (0) labels: PBE, "
                    "expt_is_metal, experiment"),
    "is_metal": ("load_expt_is_metal", "Matbench expt_is_metal labels"),
    "steels": ("load_steels_yield", "steel yield strengths, MPa (Matbench steels)"),
}  # fmt: skip


def _data(args: argparse.Namespace) -> int:
    import mfgp.datasets
    from mfgp.exceptions import InputDataError

    if args.dataset not in DATASETS:
        raise InputDataError(f"no shipped dataset {args.dataset!r}; choose one of "
                             f"{', '.join(DATASETS)}")  # fmt: skip
    t0 = time.perf_counter()
    df = getattr(mfgp.datasets, DATASETS[args.dataset][0])()
    if args.output:
        from mfgp._io import atomic_write

        with atomic_write(args.output) as fh:
            df.to_csv(fh, index=False)
        counts = df.groupby("fidelity", sort=False).size()
        order = [f for f in df.attrs.get("fidelities", counts.index) if f in counts.index]
        print(f"wrote {len(df)} rows ({', '.join(f'{f} {counts[f]}' for f in order)}) to "
              f"{args.output}; fit it with: mfgp fit {args.output} --fidelities "
              f"{','.join(order)} -o model.mfgp")  # fmt: skip
        return 0
    from mfgp.data import MultiFidelityDataset

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


def _read_csv(path: str, columns: Sequence[str]):
    """A CSV with the ``columns`` it must have (an error naming the missing ones).

    Its index is the file's line numbers (the header is line 1, so the first row is line 2;
    a row that spans lines counts as one) and ``attrs["source"]`` the path, so messages
    about a row name ``FILE line N``.
    """
    import pandas as pd

    from mfgp.exceptions import InputDataError

    try:
        df = pd.read_csv(path, keep_default_na=False)
    except FileNotFoundError as err:
        raise InputDataError(f"no file {path!r}") from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputDataError(f"{path!r} is not a readable CSV: {err}") from err
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputDataError(f"{path!r} needs columns {list(columns)}; missing {missing} "
                             f"(it has {list(df.columns)})")  # fmt: skip
    df.index = pd.RangeIndex(2, len(df) + 2)
    df.attrs["source"] = str(path)
    return df


def _observations(args: argparse.Namespace):
    """The long frame of ``fit`` / ``evaluate``, with its fidelity order attached."""
    df = _read_csv(args.data, ["formula", "fidelity", "value"])
    df["fidelity"] = df["fidelity"].astype(str)
    if args.fidelities:
        fids = [f.strip() for f in args.fidelities.split(",") if f.strip()]
    else:
        from mfgp.data.dataset import misspelled_fidelities
        from mfgp.exceptions import UnknownFidelityError

        odd = misspelled_fidelities(df["fidelity"].tolist())
        if odd:  # hse06 beside hse: a typo would silently become a level of its own
            lines = ", ".join(str(df.index[i]) for i, _, _ in odd[:10])
            more = f" and {len(odd) - 10} more" if len(odd) > 10 else ""
            raise UnknownFidelityError(
                f"{args.data} line{'s' if len(odd) > 1 else ''} {lines}{more}: {odd[0][2]}; "
                "correct the fidelity, or pass --fidelities (low to high) listing it if it is "
                "a level of its own"
            )
        fids = list(dict.fromkeys(df["fidelity"]))  # order of first appearance
        if args.target:
            fids = [f for f in fids if f != args.target] + [args.target]
    if args.target and fids[-1] != args.target:
        from mfgp.exceptions import InputDataError

        raise InputDataError(f"--target {args.target!r} must be the last of --fidelities {fids}")
    df.attrs["fidelities"] = fids
    if not args.quiet:
        print(f"fidelities, low to high: {', '.join(fids)} (target {fids[-1]!r})")
    return df


#: ``--multitask`` -> ``HurdleRegressor(multitask=...)``
_MULTITASK = {"auto": "auto", "yes": True, "no": False}
_MULTITASK_HELP = ("the hurdle's metal classifier: also learn the lower fidelities' zero "
                   "values as a task (auto: while the target has fewer than 200 labelled "
                   "compositions)")


def _estimator(args: argparse.Namespace):
    from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor

    common = {"progress": not args.quiet, "device": args.device}
    if args.experts:
        names = [n.strip() for n in args.experts.split(",") if n.strip()]
        common["experts"] = "all" if names == ["all"] else names
        common["mixture"] = args.mixture
    if args.model == "hurdle":
        return HurdleRegressor(args.architecture, seed=args.seed,
                               multitask=_MULTITASK[args.multitask], **common)  # fmt: skip
    return MultiFidelityRegressor(args.architecture, seed=args.seed, **common)


def _fit(args: argparse.Namespace) -> int:
    df = _observations(args)
    t0 = time.perf_counter()
    est = _estimator(args).fit(df)
    fitted = f"fitted {type(est).__name__} on {len(df)} rows"
    if args.recalibrate:
        est.recalibrate(args.recalibrate, seed=args.seed)
        fitted += f", recalibrated on {args.recalibrate} folds"
    est.save(args.output)
    print(f"{fitted} in {time.perf_counter() - t0:.1f} s; saved to {args.output}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from mfgp.estimators import MultiFidelityRegressor, _interval_level

    est = _load_model(args.model_file, args.device)
    formulas = _read_csv(args.formulas, [args.column])[args.column].astype(str).tolist()
    level = _interval_level(args.level)
    if isinstance(est, MultiFidelityRegressor):
        pred = est.predictive(formulas, fidelity=args.fidelity)
        out = pd.DataFrame({"formula": formulas, **pred.table(level)})
    else:  # the hurdle's own table: P(metal) second, as predict_frame gives it
        out = est.predict_frame(formulas, level=level)
    _write_csv(out, args, f"wrote {len(out)} predictions to {args.output}")
    return 0


def _reactions(args: argparse.Namespace) -> int:
    from mfgp.estimators import MultiFidelityRegressor, _interval_level
    from mfgp.exceptions import InputDataError

    est = _load_model(args.model_file, args.device)
    if not isinstance(est, MultiFidelityRegressor):
        raise InputDataError(
            f"{args.model_file!r} holds a {type(est).__name__}; reaction energies need a "
            "MultiFidelityRegressor of formation enthalpies (eV/atom)"
        )
    reactions = _read_csv(args.reactions, [args.column])[args.column].astype(str).tolist()
    out = est.reaction_energy(reactions, fidelity=args.fidelity,
                              level=_interval_level(args.level))  # fmt: skip
    _write_csv(out, args, f"wrote {len(out)} reaction energies to {args.output}")
    return 0


def _load_model(name: str, device):
    """A saved estimator's file, or a ready-made model's name (``expt_gap``) without one."""
    from pathlib import Path

    from mfgp.estimators import load_estimator

    if not Path(name).exists():
        from mfgp import pretrained

        if name in set(pretrained.available()["name"]):
            return pretrained.load(name, device=device)
    return load_estimator(name, device=device)


def _write_csv(frame, args: argparse.Namespace, message: str) -> None:
    """``frame`` to ``args.output`` atomically; its head unless ``--quiet``; ``message``."""
    from mfgp._io import atomic_write

    with atomic_write(args.output) as fh:
        frame.to_csv(fh, index=False)
    if not args.quiet:
        print(frame.head(10).to_string(index=False))
    print(message)


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from mfgp._io import atomic_write
    from mfgp.calibration import cross_validate
    from mfgp.data import MultiFidelityDataset, kfold

    df = _observations(args)
    ds = MultiFidelityDataset.from_frame(df)
    cv = cross_validate(_estimator(args), ds, kfold(ds, args.folds, seed=args.seed),
                        progress=not args.quiet)  # fmt: skip
    table = cv.summary()
    print(table.round(4).to_string())
    if args.output:
        with atomic_write(args.output) as fh:
            json.dump({"summary": json.loads(table.to_json(orient="index")),
                       "folds": args.folds, "seed": args.seed}, fh, indent=1)  # fmt: skip
    if args.plots:
        from pathlib import Path

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from mfgp.calibration.plots import calibration_curve, parity_plot

        folder = Path(args.plots)
        folder.mkdir(parents=True, exist_ok=True)
        p = cv.predictions
        parity = parity_plot(p.observed, p["mean"], p["std"], units=args.units,
                             quantity=args.quantity, folds=args.folds)  # fmt: skip
        for name, (fig, _) in {"parity": parity,
                               "calibration": calibration_curve(p.observed, p["mean"],
                                                                p["std"])}.items():  # fmt: skip
            fig.savefig(folder / f"{name}.png", dpi=110)
            plt.close(fig)
        print(f"wrote parity.png and calibration.png to {folder}")
    return 0


def _screen(args: argparse.Namespace) -> int:
    from mfgp.candidates import count_compositions, enumerate_compositions
    from mfgp.exceptions import InputDataError
    from mfgp.screen import screen

    est = _load_model(args.model_file, args.device)
    if (args.elements is None) == (args.candidates is None):
        raise InputDataError("give either --elements (to enumerate) or --candidates (a CSV)")
    if args.candidates:
        candidates = _read_csv(args.candidates, ["formula"])["formula"].astype(str).tolist()
    else:
        elements = [e.strip() for e in args.elements.split(",") if e.strip()]
        n_el = tuple(int(k) for k in args.n_elements.split(","))
        opts = dict(n_elements=n_el, max_atoms_per_formula=args.max_atoms,
                    charge_balanced=args.charge_balanced)  # fmt: skip
        if not args.quiet:
            print(f"{count_compositions(elements, **opts):,} candidate compositions")
        known = list(est.dataset_.compositions) if args.exclude_known else None
        candidates = enumerate_compositions(elements, exclude=known, **opts)
    window = None
    if args.window:
        try:
            lo, hi = (float(v) for v in args.window.split(","))
        except ValueError as err:
            raise InputDataError(f"--window is lo,hi (e.g. 1.1,1.7); got {args.window!r}") from err
        window = (lo, hi)
    from mfgp.fastvar import fast_variances

    if args.rank < 1:
        raise InputDataError(f"--rank must be >= 1; got {args.rank}")
    if args.refine is not None and args.refine != 0 and not args.refine >= 1:
        raise InputDataError(f"--refine must be 0 (the fast scores decide) or >= 1; got "
                             f"{args.refine}")  # fmt: skip
    refine = {} if args.refine is None else {"refine": args.refine or None}
    # a list (a CSV's formulas) keeps its known size for screen's rule; a stream is counted
    counted = _Counted(candidates) if not isinstance(candidates, list) else None
    t0 = time.perf_counter()
    with fast_variances(rank=args.rank):  # the rank of fast variances; screen picks the mode
        top = screen(est, counted or candidates, score=args.score, top_k=args.top_k, window=window,
                     maximize=not args.minimize, batch_size=args.batch_size,
                     output=args.parquet, progress=not args.quiet,
                     variances=args.variances, **refine)  # fmt: skip
    seconds = time.perf_counter() - t0
    n = len(candidates) if counted is None else counted.n
    _write_csv(top, args, f"scored {n:,} candidates in {seconds:,.1f} s "
                          f"({n / max(seconds, 1e-9):,.0f} a second); wrote the best "
                          f"{len(top)} to {args.output}")  # fmt: skip
    return 0


class _Counted:
    """Chunks of formulas (or formulas), passed through, counting the formulas."""

    def __init__(self, items) -> None:
        self.items, self.n = items, 0

    def __iter__(self):
        for item in self.items:
            self.n += 1 if isinstance(item, str) else len(item)
            yield item


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
            from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor

            costs = {}
            for item in args.cost:
                name, _, value = item.partition("=")
                costs[name] = float(value)
            pool = pd.read_csv(args.pool, keep_default_na=False)
            data = pd.read_csv(args.data, keep_default_na=False) if args.data else None
            options = json.loads(args.objective_options) if args.objective_options else {}
            model = (HurdleRegressor(args.architecture, multitask=_MULTITASK[args.multitask])
                     if args.model == "hurdle"
                     else MultiFidelityRegressor(args.architecture))  # fmt: skip
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
            elif args.json:
                print(json.dumps(camp.status(), indent=1))
            else:
                print(_status_table(camp.status(), args.store))
    except MfgpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _status_table(status: dict, store: str) -> str:
    """A campaign's :meth:`~mfgp.loop.Campaign.status` as a table a person reads."""
    rows = [("observations", "")]
    rows += [(f"  {fid}", str(n)) for fid, n in status["observations"].items()]
    best = status.get("best")
    rows += [("acquired by the campaign", str(status["acquired"])),
             ("cost spent", f"{status['spent']:g}"),
             ("pending suggestions", str(status["pending"])),
             ("rounds", str(status["rounds"])),
             ("best target value", "none yet" if best is None else f"{best:.4g}")]  # fmt: skip
    if "hits" in status:
        rows.append(("hits (target in the window)", str(status["hits"])))
    objective = status.get("objective") or {}
    if objective:
        name = objective.get("name", "")
        opts = {k: v for k, v in objective.items() if k != "name"}
        rows.append(("objective", f"{name} {opts}" if opts else str(name)))
    width = max(len(k) for k, _ in rows)
    lines = [f"campaign {store}"] + [f"  {k:<{width}}  {v}".rstrip() for k, v in rows]
    return "\n".join(lines)


#: each verb's examples, shown one a line at the end of its ``--help``
MODEL_HELP = ("a file written by mfgp fit (or .save()), or a ready-made model's name: "
              "expt_gap, expt_formation_enthalpy (mfgp.pretrained)")

EXAMPLES = {
    "fit": ["mfgp fit measured.csv --target expt -o gaps.mfgp",
            "mfgp fit measured.csv --fidelities pbe,hse,expt --model hurdle -o gaps.mfgp",
            "mfgp fit enthalpies.csv --fidelities oqmd,mp,expt --recalibrate 5 -o h.mfgp"],
    "evaluate": ["mfgp evaluate measured.csv --folds 5 --plots figures/ --quantity 'band gap' "
                 "--units eV",
                 "mfgp evaluate measured.csv --fidelities pbe,expt --model hurdle -o cv.json"],
    "predict": ["mfgp predict gaps.mfgp formulas.csv -o predictions.csv",
                "mfgp predict expt_gap formulas.csv -o gaps.csv   (the ready-made model)",
                "mfgp predict gaps.mfgp formulas.csv --fidelity pbe --level 0.95 -o p.csv"],
    "reactions": ["mfgp reactions enthalpy.mfgp reactions.csv -o energies.csv",
                  "  (a 'reaction' column: 'Al2Ni3 -> 2 AlNi + Ni', balanced if no "
                  "coefficients)"],
    "screen": ["mfgp screen expt_gap --elements Li,Na,Mg,O,S,Cl --charge-balanced "
               "--score window --window 1.1,1.7 -o top.csv",
               "  (expt_gap: the ready-made band-gap hurdle; or a file written by mfgp fit)",
               "mfgp screen gaps.mfgp --candidates formulas.csv --top-k 100 -o top.csv"],
    "demo": ["mfgp demo --fast"],
    "data": ["mfgp data bandgap", "mfgp data formation -o enthalpies.csv"],
    "featurize": ["mfgp featurize formulas.csv features.csv --preset magpie"],
    "campaign": ["mfgp campaign init run.db --pool pool.csv --data known.csv --cost pbe=1 "
                 "--cost expt=20",
                 "mfgp campaign suggest run.db -q 5 --output batch.csv",
                 "mfgp campaign observe run.db --results measured.csv",
                 "mfgp campaign status run.db", "mfgp campaign status run.db --json"],
}  # fmt: skip


def _parser(sub, verb: str, helptext: str) -> argparse.ArgumentParser:
    """A verb's parser whose ``--help`` ends with its examples, one a line."""
    return sub.add_parser(verb, help=helptext, description=helptext,
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[verb]))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mfgp`` console script."""
    # the module's docstring, its examples one a line (argparse would run them together)
    parser = argparse.ArgumentParser(prog="mfgp", description=(__doc__ or "").replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for verb, helptext, func in (
        ("fit", "fit a model to a CSV of observations and save it", _fit),
        ("evaluate", "cross-validated accuracy and calibration of a model on a CSV", _evaluate),
    ):
        p = _parser(sub, verb, helptext)
        p.add_argument("data", help="CSV with formula, fidelity, value (one row per observation)")
        if verb == "fit":
            p.add_argument("-o", "--output", required=True, help="the model file to write")
            p.add_argument("--recalibrate", type=int, default=0, metavar="FOLDS",
                           help="also fit an isotonic recalibration of the intervals on this "
                           "many folds of the data (FOLDS more fits; predict then uses it)")
        else:
            p.add_argument("--folds", type=int, default=5, help="cross-validation folds")
            p.add_argument("-o", "--output", help="also write the metrics as JSON")
            p.add_argument("--plots", help="folder for parity and calibration plots (PNG)")
            p.add_argument("--quantity", default="", help="the property on the plots' axes, "
                           "e.g. 'band gap'")
            p.add_argument("--units", default="", help="its unit on the axes and in the MAE, "
                           "e.g. eV")
        p.add_argument("--model", choices=["regressor", "hurdle"], default="regressor",
                       help="a Gaussian regressor, or the hurdle model for values with zeros")
        p.add_argument("--multitask", choices=list(_MULTITASK), default="auto",
                       help=_MULTITASK_HELP)
        p.add_argument("--architecture", default="ar1",
                       help="the regressor's: ar1, multitask, latent, single")
        p.add_argument("--fidelities", help="comma-separated, low to high, the target last "
                       "(default: their order in the file)")
        p.add_argument("--target", help="the target fidelity (moved last)")
        p.add_argument("--experts", help="a mixture of the shipped source models as the input "
                       "space: all, or comma-separated names (mfgp.experts.available())")
        p.add_argument("--mixture", default="additive", choices=["additive", "gated", "concat"],
                       help="how --experts combine")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ...")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=func)
    for verb, helptext, func, what in (
        ("predict", "predict formulas with a saved model", _predict, "formula"),
        ("reactions", "reaction energies (correlated errors included) from a saved regressor "
         "of formation enthalpies", _reactions, "reaction"),
    ):  # fmt: skip
        p = _parser(sub, verb, helptext)
        p.add_argument("model_file", help=MODEL_HELP)
        p.add_argument(f"{what}s", help=f"CSV with a {what} column")
        p.add_argument("-o", "--output", required=True, help="the CSV to write")
        p.add_argument("--column", default=what, help=f"the column holding the {what}s")
        p.add_argument("--level", type=float, default=0.9, help="central interval probability")
        p.add_argument("--fidelity", help="the fidelity to predict (default: the target)")
        p.add_argument("--device", default=None)
        p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=func)
    p = _parser(sub, "screen", "score many candidates with a saved model, keep the best")
    p.add_argument("model_file", help=MODEL_HELP)
    p.add_argument("--elements", help="comma-separated symbols to enumerate compositions from")
    p.add_argument("--candidates", help="or a CSV with a formula column")
    p.add_argument("--n-elements", default="2,3", help="distinct elements per formula")
    p.add_argument("--max-atoms", type=int, default=8, help="atoms in the reduced formula")
    p.add_argument("--charge-balanced", action="store_true",
                   help="only formulas with a neutral choice of common oxidation states")
    p.add_argument("--exclude-known", action="store_true",
                   help="leave out compositions the model was fitted on")
    p.add_argument("--score", default="mean", choices=["mean", "std", "window"])
    p.add_argument("--window", help="lo,hi of --score window, e.g. 1.1,1.7")
    p.add_argument("--minimize", action="store_true", help="--score mean: lowest first")
    p.add_argument("--top-k", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--variances", default="auto", choices=["auto", "exact", "fast"],
                   help="predictive variances: exact, fast (low-rank, never below exact) or "
                        "auto (fast for >= 2,048 training rows and >= 20,480 candidates or a "
                        "stream of unknown length)")
    p.add_argument("--rank", type=int, default=512, help="rank of --variances fast")
    p.add_argument("--refine", type=float, default=None,
                   help="fast variances: rescore the best refine x top-k rows with exact "
                        "variances before picking the top k (default 4; 0: the fast scores "
                        "decide)")
    p.add_argument("-o", "--output", required=True, help="CSV of the best rows")
    p.add_argument("--parquet", help="also write every scored row to this Parquet file")
    p.add_argument("--device", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_screen)
    p = _parser(sub, "demo", "fit the multi-fidelity band-gap model on shipped data")
    p.add_argument("--fast", action="store_true", help="fewer folds and iterations")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)
    p = _parser(sub, "data", "summarise a shipped dataset, or export it as CSV (-o)")
    p.add_argument("dataset", metavar="NAME", help="one of: " + "; ".join(
        f"{name} ({what})" for name, (_, what) in DATASETS.items()))
    p.add_argument("-o", "--output", help="write its rows (the long format: formula, "
                   "composition, fidelity, value, source, ...) to this CSV")
    p.add_argument("--preset", default="magpie", help="the featurizer of the summary")
    p.set_defaults(func=_data)
    p = _parser(sub, "featurize", "featurize a CSV of formulas")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--column", default="formula")
    p.add_argument("--preset", default="magpie")
    p.set_defaults(func=_featurize)
    p = _parser(sub, "campaign", "plan experiments: init, suggest, observe, status")
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
    p.add_argument("--model", choices=["regressor", "hurdle"], default="regressor",
                   help="init: a Gaussian regressor, or the hurdle model for values with zeros "
                        "(band gaps)")
    p.add_argument("--multitask", choices=list(_MULTITASK), default="auto",
                   help="init: " + _MULTITASK_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", type=int, default=1, help="suggest: batch size")
    p.add_argument("--output", help="suggest: also write the batch to this CSV")
    p.add_argument("--results", help="observe: CSV with formula, fidelity, value")
    p.add_argument("--json", action="store_true", help="status: the machine-readable form")
    p.set_defaults(func=_campaign)
    args = parser.parse_args(argv)
    from mfgp.exceptions import MfgpError

    try:
        return int(args.func(args))
    except MfgpError as err:  # bad input: one line naming it, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
