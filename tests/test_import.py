"""Importing mfgp is silent and fast, and so is importing the parts that pull in the GP stack."""

import subprocess
import sys

import pytest

MODULES = ["mfgp", "mfgp.estimators", "mfgp.models", "mfgp.kernels", "mfgp.fit", "mfgp.nn",
           "mfgp.predict", "mfgp.linalg", "mfgp.experts", "mfgp.loop", "mfgp.acquisition",
           "mfgp.screen", "mfgp.calibration", "mfgp.cli"]  # fmt: skip


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize("first", ["mfgp.linalg", "mfgp.kernels", "mfgp.estimators"])
def test_import_raises_no_warning_under_W_error(first):
    """Each ``first`` is a module that can be the one to pull in the GP stack; then the rest."""
    done = _run("; ".join(f"import {m}" for m in [first, *MODULES]))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "", done.stderr[-2000:]


def test_import_mfgp_is_lazy_and_under_a_second():
    code = ("import sys, time; t = time.perf_counter(); import mfgp; "
            "print(time.perf_counter() - t, 'torch' in sys.modules)")  # fmt: skip
    done = _run(code)
    seconds, torch_loaded = done.stdout.split()
    assert float(seconds) < 1.0 and torch_loaded == "False"


def test_a_warning_other_than_the_known_one_still_shows():
    code = ("import warnings, mfgp._deps; warnings.warn('`torch.jit.other` is deprecated', "
            "UserWarning)")  # fmt: skip
    done = _run(code)
    assert done.returncode != 0 and "UserWarning" in done.stderr


def test_mfgp_quiet_hides_every_bar_and_the_logger_reports_steps(monkeypatch, caplog):
    import logging
    import math

    import numpy as np
    import pandas as pd

    from mfgp._progress import bar
    from mfgp.calibration import cross_validate
    from mfgp.data import MultiFidelityDataset, kfold
    from mfgp.estimators import MultiFidelityRegressor

    assert not bar(range(2), progress=True).disable
    monkeypatch.setenv("MFGP_QUIET", "1")
    assert bar(range(2), progress=True).disable
    monkeypatch.setenv("MFGP_QUIET", "0")
    assert not bar(range(2), progress=True).disable
    rng = np.random.default_rng(0)
    formulas = [f"Fe{a}O{b}" for a in range(1, 8) for b in range(1, 8) if math.gcd(a, b) == 1]
    frame = pd.DataFrame({"formula": formulas, "fidelity": "t",
                          "value": rng.standard_normal(len(formulas))})  # fmt: skip
    ds = MultiFidelityDataset.from_frame(frame)
    with caplog.at_level(logging.INFO, logger="mfgp"):
        cross_validate(MultiFidelityRegressor("single", progress=False, max_iter=3), ds,
                       kfold(ds, 2, seed=0), progress=False)  # fmt: skip
    folds = [r.getMessage() for r in caplog.records if r.name.startswith("mfgp")]
    assert any(m.startswith("fold 2 of 2: fitted on") for m in folds), folds
