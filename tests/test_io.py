"""Save / load without pickle: bit-identical in a fresh process, typed errors, atomic writes."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import mfgp.io as mio
from mfgp.estimators import MultiFidelityRegressor
from mfgp.exceptions import IncompatibleVersionError, SerializationError, UnknownSpecError
from mfgp.models import FeatureMap
from mfgp.models.specs import AR1Spec, FitOptions, LatentChainSpec
from tests.ladders import small_ladder

FAST = dict(max_rows_per_fidelity=60, max_fit_points=150, max_iter=8, progress=False)
PROBES = ["NaCl", "Si", "GaAs", "ZnO", "MgO", "Cu"]


@pytest.fixture(scope="module")
def ladder():
    return small_ladder(90, 200, seed=5, also=PROBES)


@pytest.fixture(scope="module", params=["ar1", "latent", "multitask", "single"])
def saved(request, ladder, tmp_path_factory):
    reg = MultiFidelityRegressor(request.param, **FAST).fit(ladder)
    path = tmp_path_factory.mktemp("saved") / f"{request.param}.mfgp"
    reg.save(path)
    return reg, path


def test_roundtrip_is_bit_identical_in_a_fresh_process(saved, tmp_path):
    reg, path = saved
    mean, std = reg.predict(PROBES, True)
    code = (
        "import sys, json, numpy as np\n"
        "import mfgp\n"
        f"reg = mfgp.MultiFidelityRegressor.load({str(path)!r})\n"
        f"m, s = reg.predict({PROBES!r}, True)\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, np.stack([m, s]))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    out = np.load(tmp_path / "out.npy")
    assert np.array_equal(out[0], mean) and np.array_equal(out[1], std)
    assert path.stat().st_size < 2_000_000  # parameters and data rows, no n x n factor


def test_a_loaded_regressor_is_a_regressor(saved):
    reg, path = saved
    back = MultiFidelityRegressor.load(path)
    assert back.get_params() == {**reg.get_params(), "deep_features": reg.deep_features}
    assert back.dataset_.fidelities == reg.dataset_.fidelities
    assert np.array_equal(back.train_rows_, reg.train_rows_)
    assert type(back.spec_) is type(reg.spec_) and back.spec_ == reg.spec_
    table = back.predict_frame(["NaCl"])
    assert np.isfinite(table["mean"]).all()


def test_deep_features_roundtrip(ladder, tmp_path):
    reg = MultiFidelityRegressor("ar1", deep_features=True,
                                 pretrain_options={"epochs": 3, "hidden": (16,), "out_dim": 4},
                                 **FAST).fit(ladder)  # fmt: skip
    reg.save(tmp_path / "deep.mfgp")
    back = MultiFidelityRegressor.load(tmp_path / "deep.mfgp")
    assert np.array_equal(back.predict(PROBES), reg.predict(PROBES))


def test_truncated_corrupted_and_foreign_files_raise_typed_errors(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.mfgp"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SerializationError, match="truncated or corrupted"):
        MultiFidelityRegressor.load(cut)
    with pytest.raises(SerializationError, match="no saved model"):
        MultiFidelityRegressor.load(tmp_path / "missing.mfgp")
    other = tmp_path / "other.mfgp"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(SerializationError, match="no manifest.json"):
        MultiFidelityRegressor.load(other)


def rewrite_manifest(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest)
            zout.writestr(item, data)


def test_newer_format_and_unknown_spec(saved, tmp_path):
    _, path = saved
    newer = tmp_path / "newer.mfgp"
    rewrite_manifest(path, newer, lambda m: m.update(format_version=mio.FORMAT_VERSION + 1))
    with pytest.raises(IncompatibleVersionError, match="upgrade mfgp"):
        MultiFidelityRegressor.load(newer)
    unknown = tmp_path / "unknown.mfgp"
    rewrite_manifest(path, unknown, lambda m: m["spec"].update(name="deep_kernel_v9"))
    with pytest.raises(UnknownSpecError, match="unknown model spec 'deep_kernel_v9'"):
        MultiFidelityRegressor.load(unknown)


def test_an_interrupted_save_leaves_the_old_file(saved, tmp_path, monkeypatch):
    reg, path = saved
    target = tmp_path / "model.mfgp"
    reg.save(target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        reg.save(target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.mfgp"]  # no temporary left


def test_core_models_save_and_load(tmp_path):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(40, 3, generator=g, dtype=torch.float64)
    X[:, -1] = (X[:, 0] > 0.4).double()
    Y = torch.sin(5 * X[:, :1]) + X[:, -1:]
    fmap = FeatureMap.standardize(X)
    for spec in (AR1Spec(rho="linear"), LatentChainSpec(n_samples=8)):
        model = spec.build(X, Y, feature_map=fmap, observations=(X, Y))
        spec.fit(model, FitOptions(max_iter=5))
        path = mio.save_model(tmp_path / f"{spec.name}.mfgp", model, spec, train=(X, Y, None),
                              feature_map=fmap, observations=(X, Y))  # fmt: skip
        back = mio.load_model(path)
        Xq = torch.rand(7, 3, generator=g, dtype=torch.float64)
        Xq[:, -1] = 1.0
        with torch.no_grad():
            a, b = model.posterior(Xq.unsqueeze(-2)), back.posterior(Xq.unsqueeze(-2))
        assert torch.equal(a.mean, b.mean) and torch.equal(a.variance, b.variance), spec
