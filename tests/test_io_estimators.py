"""Every estimator saves and loads without pickle, bit for bit, in a fresh process; dtype/device."""

import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MetalClassifier, MultiFidelityRegressor
from mfgp.exceptions import InputDataError, SerializationError
from mfgp.hurdle import HurdleSpec
from mfgp.models import LatentInputClassifier
from tests.ladders import small_ladder

FAST = dict(max_rows_per_fidelity=80, max_fit_points=150, max_iter=8)
PROBES = ["Cu", "NaCl", "Si", "GaAs", "ZnO", "Al", "Xe"]  # Xe: no PBE row in the fit


@pytest.fixture(scope="module")
def gaps():
    df = load_bandgap_ladder(["pbe", "expt"])
    expt = df[df.fidelity == "expt"].sample(160, random_state=3)
    pbe = df[(df.fidelity == "pbe") & df.composition.isin(expt.composition)]
    extra = df[(df.fidelity == "pbe") & df.composition.isin(["Cu", "NaCl", "Si"])]
    return pd.concat([pbe, extra, expt], ignore_index=True).drop_duplicates()


@pytest.fixture(scope="module")
def hurdle(gaps, tmp_path_factory):
    est = HurdleRegressor(regressor_options=FAST, latent={"max_iter": 8, "max_fit_points": 150},
                          classifier_options={"epochs": 5, "num_inducing": 60},
                          progress=False).fit(gaps)  # fmt: skip
    path = tmp_path_factory.mktemp("hurdle") / "hurdle.mfgp"
    est.save(path)
    return est, path


def _in_fresh_process(code: str, out) -> np.ndarray:
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    return np.load(out)


def test_hurdle_roundtrip_is_bit_identical_in_a_fresh_process(hurdle, tmp_path):
    est, path = hurdle
    assert isinstance(est.classifier_.model_, LatentInputClassifier)
    mean, std = est.predict(PROBES, True)
    p = est.predict_proba(PROBES)[:, 1]
    out = tmp_path / "out.npy"
    code = (
        "import numpy as np, mfgp\n"
        f"h = mfgp.HurdleRegressor.load({str(path)!r})\n"
        f"m, s = h.predict({PROBES!r}, True)\n"
        f"np.save({str(out)!r}, np.stack([m, s, h.predict_proba({PROBES!r})[:, 1]]))\n"
    )
    back = _in_fresh_process(code, out)
    assert np.array_equal(back[0], mean) and np.array_equal(back[1], std)
    assert np.array_equal(back[2], p)
    # the parts are whole estimators again, with their own latent chain
    loaded = HurdleRegressor.load(path)
    assert loaded.latent_ is loaded.classifier_.latent
    # its datasets (over the same compositions) share one featurizer again, as after the fit,
    # so a load parses and featurizes each composition once, not once per dataset
    parts = (loaded, loaded.regressor_, loaded.classifier_, loaded.latent_)
    assert len({id(part.dataset_.featurizer) for part in parts}) == 1
    assert np.array_equal(loaded.regressor_.dataset_.features, est.regressor_.dataset_.features)
    again = HurdleRegressor.load(path)  # a load's sharing stays inside that load
    assert again.dataset_.featurizer is not loaded.dataset_.featurizer
    assert loaded.get_params() == est.get_params()
    assert loaded.spec_ == est.spec_ == HurdleSpec("softplus", 0.1)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    assert {"classifier.latent.dataset.json", "regressor.dataset.json"} <= names
    # a hurdle file is not a regressor file
    with pytest.raises(SerializationError, match="holds a 'HurdleRegressor', not a Metal"):
        MetalClassifier.load(path)


@pytest.mark.parametrize("multitask, observed", [(True, True), (False, False)])
def test_metal_classifier_roundtrip(gaps, tmp_path, multitask, observed):
    from mfgp.data import MultiFidelityDataset
    from mfgp.estimators import zero_gap_labels

    labels = zero_gap_labels(MultiFidelityDataset.from_frame(gaps))
    latent = None
    if not multitask:
        pbe = gaps[gaps.fidelity == "pbe"]
        latent = MultiFidelityRegressor("single", progress=False, **FAST).fit(pbe)
    clf = MetalClassifier(multitask, epochs=5, num_inducing=60, latent=latent,
                          latent_observed=observed, progress=False).fit(labels)  # fmt: skip
    clf.save(tmp_path / "clf.mfgp")
    back = MetalClassifier.load(tmp_path / "clf.mfgp")
    assert np.array_equal(back.predict_proba(PROBES), clf.predict_proba(PROBES))
    assert np.array_equal(back.predict_proba(PROBES, "pbe"), clf.predict_proba(PROBES, "pbe"))
    assert back.spec_ == clf.spec_
    if latent is not None:
        assert isinstance(back.latent, MultiFidelityRegressor)
        assert np.array_equal(back.latent.predict(PROBES), latent.predict(PROBES))


def test_a_custom_classifier_cannot_be_pickled_in(gaps, tmp_path):
    from sklearn.dummy import DummyClassifier

    est = HurdleRegressor(classifier=DummyClassifier(), progress=False)
    est.classifier_ = est.regressor_ = est.model_ = object()  # as if fitted
    with pytest.raises(SerializationError, match="custom classifier .DummyClassifier."):
        est.save(tmp_path / "x.mfgp")
    assert not (tmp_path / "x.mfgp").exists()


def test_hurdle_spec_splits_and_validates():
    spec = HurdleSpec("log", offset=0.5)
    labels, positive, g = spec.split(np.array([0.0, 2.0, 0.0, 1.0]),
                                     np.array([True, True, False, False]))  # fmt: skip
    assert labels.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert positive.tolist() == [False, True, True, True]
    assert np.allclose(g, np.log([2.0, 0.5, 1.5]))  # lower fidelities shifted by the offset
    with pytest.raises(InputDataError, match="row 1 has -1"):
        spec.split(np.array([0.0, -1.0]), np.array([True, True]))
    with pytest.raises(InputDataError, match="no nonzero target values"):
        spec.split(np.array([0.0, 1.0]), np.array([True, False]))
    with pytest.raises(InputDataError, match="offset must be > 0"):
        HurdleSpec(offset=0.0)


def test_dtype_and_device_follow_the_estimator(tmp_path):
    df = small_ladder(60, 60, seed=2, also=["Si", "NaCl"])
    ref = MultiFidelityRegressor("ar1", progress=False, **FAST).fit(df)
    low = MultiFidelityRegressor("ar1", progress=False, dtype="float32", device="cpu",
                                 **FAST).fit(df)  # fmt: skip
    X = low.dataset_.inputs_for(["Si", "NaCl"])
    assert next(low.model_.parameters()).dtype == torch.float32
    assert low._raw_inputs(X, None).dtype == torch.float32  # tensors are cast, not rejected
    m32, s32 = low.predict(["Si", "NaCl"], True)
    m64, s64 = ref.predict(["Si", "NaCl"], True)
    assert np.allclose(m32, m64, atol=0.15) and np.allclose(s32, s64, rtol=0.3, atol=0.05)
    low.save(tmp_path / "f32.mfgp")
    back = MultiFidelityRegressor.load(tmp_path / "f32.mfgp")
    assert back.dtype == "float32" and next(back.model_.parameters()).dtype == torch.float32
    assert np.array_equal(back.predict(["Si", "NaCl"]), m32)
    with pytest.raises(InputDataError, match="dtype must be 'float64' or 'float32'; got 'half'"):
        MultiFidelityRegressor(dtype="half", progress=False).fit(df)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_estimators_fit_and_predict_on_cuda(gaps, tmp_path):
    reg = MultiFidelityRegressor("ar1", device="cuda", progress=False, **FAST).fit(gaps)
    assert next(reg.model_.parameters()).is_cuda
    cpu = MultiFidelityRegressor("ar1", progress=False, **FAST).fit(gaps)
    assert np.allclose(reg.predict(PROBES), cpu.predict(PROBES), atol=1e-3)
    hurdle = HurdleRegressor(device="cuda", regressor_options=FAST,
                             latent={"max_iter": 8, "max_fit_points": 150},
                             classifier_options={"epochs": 5, "num_inducing": 60},
                             progress=False).fit(gaps)  # fmt: skip
    hurdle.save(tmp_path / "h.mfgp")
    back = HurdleRegressor.load(tmp_path / "h.mfgp")
    assert next(back.regressor_.model_.parameters()).is_cuda
    assert np.array_equal(back.predict(PROBES), hurdle.predict(PROBES))
    on_cpu = HurdleRegressor.load(tmp_path / "h.mfgp", device="cpu")
    assert np.allclose(on_cpu.predict(PROBES), hurdle.predict(PROBES), atol=1e-6)
