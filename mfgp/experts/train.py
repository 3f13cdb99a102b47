"""Train the shipped source models: ``python -m mfgp.experts.train [source ...]``.

Reproduces ``mfgp/experts/_library/`` from the data sets shipped in :mod:`mfgp.datasets`
(seed 0, CPU, float32): for each source and each architecture (``mlp``, ``set``), one model,
with a 10% validation split of the compositions for early stopping and for the card's metrics;
``index.json`` keeps, for each source, the architecture with the lower validation MAE.

Sources, one row per reduced composition (none is an experimental label; the benchmarks'
targets are experimental, so no source model has seen the answer a benchmark scores):

* ``mp_pbe_gap``: Materials Project 2018 PBE band gaps, ground-state polymorph.
* ``mp_e_form``: Matbench ``mp_e_form`` DFT formation energies, lowest per composition.
* ``hse``, ``gllb_sc``, ``scan``: the Chen et al. 2021 band gaps of those functionals
  (ground-state polymorph). Too few for a network from scratch, so each starts from the
  ``mp_pbe_gap`` weights of its architecture and is fine-tuned (its card says so).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mfgp._io import atomic_write
from mfgp.experts.library import CARD_FORMAT
from mfgp.nn.experts import EXTENDED_COLUMNS, ElementSetNet, Expert, element_properties
from mfgp.nn.extractor import FeatureExtractor, fit_network, split_rows

__all__ = ["SOURCES", "source_frame", "train_source", "main"]

_LICENCE_MP = "Materials Project data CC-BY 4.0 (Jain et al. 2013)"
#: source -> description; ``init``: the source whose weights a small source starts from
SOURCES: dict[str, dict] = {
    "mp_pbe_gap": {"property": "band gap (PBE)", "unit": "eV",
                   "data": "mp2018_pbe_gaps.csv.gz (ground-state polymorph per composition)",
                   "licence": f"automatminer copy (BSD-3); {_LICENCE_MP}"},
    "mp_e_form": {"property": "formation energy (PBE)", "unit": "eV/atom",
                  "data": "matbench_mp_e_form.csv.gz (lowest value per composition)",
                  "licence": f"Matbench, CrabNet copy (MIT); {_LICENCE_MP}"},
    "hse": {"property": "band gap (HSE)", "unit": "eV", "init": "mp_pbe_gap",
            "data": "chen2021_dft_gaps.csv.gz, method hse (ground-state polymorph)",
            "licence": "Chen et al. 2021, megnet copy (BSD-3)"},
    "gllb_sc": {"property": "band gap (GLLB-SC)", "unit": "eV", "init": "mp_pbe_gap",
                "data": "chen2021_dft_gaps.csv.gz, method gllb-sc (ground-state polymorph)",
                "licence": "Chen et al. 2021, megnet copy (BSD-3)"},
    "scan": {"property": "band gap (SCAN)", "unit": "eV", "init": "mp_pbe_gap",
             "data": "chen2021_dft_gaps.csv.gz, method scan (ground-state polymorph)",
             "licence": "Chen et al. 2021, megnet copy (BSD-3)"},
}  # fmt: skip

#: training options of each architecture, for a large source and for a fine-tuned small one
OPTIONS = {
    "mlp": {"epochs": 60, "batch_size": 512, "lr": 2e-3, "weight_decay": 1e-4, "patience": 8},
    "set": {"epochs": 40, "batch_size": 512, "lr": 2e-3, "weight_decay": 1e-4, "patience": 6},
    "small": {"epochs": 120, "batch_size": 128, "lr": 5e-4, "weight_decay": 1e-3,
              "patience": 15},
}  # fmt: skip


def source_frame(source: str) -> pd.DataFrame:
    """``composition, formula, value``: one row per composition of a source's training data."""
    from mfgp.datasets import _bandgap_levels, _read, _with_composition

    if source == "mp_e_form":
        df = _with_composition(_read("matbench_mp_e_form.csv.gz"))
        df = df.sort_values(["composition", "target"], kind="stable")
        df = df.drop_duplicates("composition").rename(columns={"target": "value"})
    else:
        method = {"mp_pbe_gap": "pbe", "hse": "hse", "gllb_sc": "gllb-sc", "scan": "scan"}[source]
        df = _bandgap_levels()[method]
    return df[["composition", "formula", "value"]].reset_index(drop=True)


def _net(arch: str, X: torch.Tensor, train: torch.Tensor) -> torch.nn.Module:
    if arch == "set":
        return ElementSetNet(embedding=element_properties())
    a, b = EXTENDED_COLUMNS["mlp"]
    return FeatureExtractor.standardized_on(X[train, a:b], (256, 128), 16)


def _write_model(out: Path, expert: Expert, card: dict) -> dict:
    """``<name>.safetensors`` and ``<name>.json`` (the card) of one library model, atomically."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in expert.state_dict().items()}
    with atomic_write(out / f"{card['name']}.safetensors", "wb") as fh:
        fh.write(save(state))
    with atomic_write(out / f"{card['name']}.json") as fh:
        json.dump(card, fh, indent=2)
    return card


def train_source(source: str, arch: str, out: Path, *, seed: int = 0,
                 progress: bool = True) -> dict:  # fmt: skip
    """Train one source model and write ``<source>-<arch>.safetensors`` and ``.json`` in ``out``."""
    from mfgp.featurize import CompositionFeaturizer

    info = SOURCES[source]
    frame = source_frame(source)
    featurizer = CompositionFeaturizer("extended")
    X = torch.as_tensor(featurizer.transform(frame["formula"].tolist()), dtype=torch.float32)
    y = torch.as_tensor(frame["value"].to_numpy(), dtype=torch.float32)
    train, val = split_rows(len(frame), 0.1, seed)
    torch.manual_seed(seed)
    a, b = EXTENDED_COLUMNS[arch]
    name = f"{source}-{arch}"
    expert = Expert(name, _net(arch, X, train), (a, b))
    options = OPTIONS[arch]
    if "init" in info:
        start = out / f"{info['init']}-{arch}.safetensors"
        from safetensors.torch import load_file

        state = load_file(str(start))
        if arch == "mlp":  # keep this source's own input standardisation
            state = {k: v for k, v in state.items() if not k.startswith("net.x_")}
        expert.load_state_dict(state, strict=False)
        options = OPTIONS["small"]
    tic = time.perf_counter()
    report = fit_network(expert, X, y, train, val, seed=seed, progress=progress, desc=name,
                         **options)  # fmt: skip
    seconds = time.perf_counter() - tic
    with torch.no_grad():
        pred = expert.predict(X[val]).squeeze(-1) * report.y_std + report.y_mean
    err = (pred - y[val]).numpy()
    card = {
        "format": CARD_FORMAT, "version": 1, "name": name, "source": source, "arch": arch,
        "property": info["property"], "unit": info["unit"], "data": info["data"],
        "licence": info["licence"],
        "saw": f"{len(frame)} computed values ({info['property']}); no experimental labels",
        "init_from": f"{info['init']}-{arch}" if "init" in info else None,
        "split": {"kind": "random compositions", "seed": seed, "n_train": int(train.numel()),
                  "n_val": int(val.numel())},
        "metrics": {"val_mae": float(np.abs(err).mean()),
                    "val_rmse": float(np.sqrt((err**2).mean())),
                    "val_mse_standardised": float(min(report.val_mse)),
                    "best_epoch": report.best_epoch, "epochs_run": len(report.val_mse)},
        "target_mean": report.y_mean, "target_std": report.y_std,
        "featurizer": {"preset": "extended", "version": featurizer.version,
                       "columns": [a, b]},
        "train_seconds": round(seconds, 1), "options": options,
        "torch": torch.__version__, "expert": expert.config,
    }  # fmt: skip
    return _write_model(out, expert, card)


def write_magpie(out: Path) -> dict:
    """The ``magpie`` block: standardised Magpie statistics, with the MP PBE compositions' stats."""
    from mfgp.featurize import CompositionFeaturizer
    from mfgp.nn.experts import Standardize

    frame = source_frame("mp_pbe_gap")
    featurizer = CompositionFeaturizer("extended")
    a, b = EXTENDED_COLUMNS["standardize"]
    X = torch.as_tensor(featurizer.transform(frame["formula"].tolist())[:, a:b],
                        dtype=torch.float32)  # fmt: skip
    std = X.std(0)
    expert = Expert("magpie", Standardize(b - a, X.mean(0), torch.where(std > 1e-8, std, 1.0)),
                    (a, b))  # fmt: skip
    card = {
        "format": CARD_FORMAT, "version": 1, "name": "magpie", "source": "magpie",
        "arch": "standardize", "property": "none (hand-made features)", "unit": "",
        "data": "mp2018_pbe_gaps.csv.gz compositions (for the standardisation only)",
        "licence": f"automatminer copy (BSD-3); {_LICENCE_MP}",
        "saw": f"{len(frame)} compositions, no property values; no experimental labels",
        "init_from": None, "split": {"kind": "none", "seed": 0, "n_train": len(frame), "n_val": 0},
        "metrics": {"val_mae": None, "val_rmse": None},
        "featurizer": {"preset": "extended", "version": featurizer.version, "columns": [a, b]},
        "train_seconds": 0.0, "options": {}, "torch": torch.__version__, "expert": expert.config,
    }  # fmt: skip
    return _write_model(out, expert, card)


def write_index(out: Path) -> dict:
    """``index.json``: every model in ``out``, and each source's kept (lower val MAE) model."""
    cards = [json.loads(p.read_text()) for p in sorted(out.glob("*-*.json"))]
    best: dict[str, dict] = {}
    for c in cards:
        if c["metrics"]["val_mae"] is None:
            continue
        kept = best.get(c["source"])
        if kept is None or c["metrics"]["val_mae"] < kept["metrics"]["val_mae"]:
            best[c["source"]] = c
    features = ["magpie"] if (out / "magpie.json").exists() else []
    index = {"format": "mfgp.expert-index", "version": 1,
             "models": [c["name"] for c in cards] + features,
             "default": {s: c["name"] for s, c in sorted(best.items())},
             "features": {f: f for f in features}}  # fmt: skip
    with atomic_write(out / "index.json") as fh:
        json.dump(index, fh, indent=2)
    return index


def main(argv: list[str] | None = None) -> None:
    """Command line: train the named sources (default all) into the package's library."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=list(SOURCES))
    parser.add_argument("--arch", nargs="*", default=["mlp", "set"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "_library")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for source in args.sources:
        for arch in args.arch:
            c = train_source(source, arch, args.out, progress=not args.quiet)
            print(f"{c['name']}: n={c['split']['n_train']}+{c['split']['n_val']} val MAE "
                  f"{c['metrics']['val_mae']:.4f} {c['unit']} in {c['train_seconds']:.0f} s",
                  flush=True)  # fmt: skip
    write_magpie(args.out)
    print(json.dumps(write_index(args.out)["default"]))


if __name__ == "__main__":
    main()
