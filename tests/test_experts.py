"""The shipped source-model library, the mixture kernels and the mixture-of-experts facade."""

import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import torch

from mfgp import experts
from mfgp.datasets import load_bandgap_ladder
from mfgp.estimators import HurdleRegressor, MultiFidelityRegressor
from mfgp.exceptions import InputDataError
from mfgp.experts.train import SOURCES, source_frame
from mfgp.featurize import CompositionFeaturizer
from mfgp.kernels.coregional import matern_ard
from mfgp.kernels.experts import AdditiveExpertKernel, GatedExpertKernel
from mfgp.nn.experts import ElementSetNet
from tests.ladders import small_ladder

LIBRARY = resources.files("mfgp.experts") / "_library"


def test_every_source_is_shipped_with_a_card_and_the_library_is_small():
    table = experts.available()
    assert sorted(table["source"]) == sorted([*SOURCES, "magpie"])
    every = experts.available(all_architectures=True)
    assert set(every["arch"]) == {"mlp", "set", "standardize"}
    assert len(every) == 2 * len(SOURCES) + 1
    for source in SOURCES:
        c = experts.card(source)
        for key in ("data", "licence", "saw", "split", "metrics", "featurizer", "train_seconds"):
            assert key in c, (source, key)
        assert "no experimental labels" in c["saw"]
        # the kept architecture is the better one on validation
        rows = every[every["source"] == source]
        assert c["metrics"]["val_mae"] == pytest.approx(rows["val_mae"].min())
    size = sum(p.stat().st_size for p in LIBRARY.iterdir())  # type: ignore[union-attr]
    assert size < 20e6


@pytest.mark.parametrize("source", ["mp_pbe_gap", "hse"])
def test_a_shipped_expert_reproduces_its_card_on_its_validation_rows(source):
    """The weights and the card belong together: the validation MAE is recomputed here."""
    c = experts.card(source)
    expert = experts.load(source)
    assert not any(p.requires_grad for p in expert.parameters())
    frame = source_frame(source)
    from mfgp.nn.extractor import split_rows

    _, val = split_rows(len(frame), 0.1, c["split"]["seed"])
    val = val[:1000]
    X = torch.as_tensor(CompositionFeaturizer("extended").transform(
        frame["formula"].iloc[val.numpy()].tolist()), dtype=torch.float32)  # fmt: skip
    with torch.no_grad():
        pred = expert.predict(X).squeeze(-1) * c["target_std"] + c["target_mean"]
    mae = float((pred - torch.as_tensor(frame["value"].iloc[val.numpy()].to_numpy())).abs().mean())
    assert mae == pytest.approx(c["metrics"]["val_mae"], rel=0.15)
    assert expert(X).shape == (len(val), c["expert"]["out_dim"])


def test_unknown_source_names_the_shipped_ones():
    with pytest.raises(InputDataError, match="mp_e_form"):
        experts.load("mp_e_from")


def test_element_set_net_ignores_absent_elements_and_batches_consistently():
    torch.manual_seed(0)
    net = ElementSetNet(out_dim=4).eval()
    x = torch.zeros(3, 118)
    x[0, [7, 25]] = torch.tensor([0.6, 0.4])
    x[1, 13] = 1.0
    x[2, [0, 7, 25, 30]] = torch.tensor([0.1, 0.5, 0.3, 0.1])
    with torch.no_grad():
        together = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(3)])
    # row 1 is padded to 4 elements in the batch, not alone: padding must not matter
    assert torch.allclose(together, alone, atol=1e-6)


def test_additive_kernel_is_the_weighted_sum_of_its_parts():
    torch.manual_seed(0)
    k = AdditiveExpertKernel([2, 3]).double()
    k.kernels[0].outputscale = 0.2
    k.kernels[1].outputscale = 0.6
    x = torch.rand(5, 5, dtype=torch.float64)
    K = k(x).to_dense()
    K0 = 0.2 * k.kernels[0].base_kernel(x[:, :2]).to_dense()
    K1 = 0.6 * k.kernels[1].base_kernel(x[:, 2:]).to_dense()
    assert torch.allclose(K, K0 + K1)
    assert torch.allclose(k.weights(), torch.tensor([0.25, 0.75], dtype=torch.float64))
    assert torch.allclose(k(x, diag=True), K.diagonal())


def test_a_saturated_gate_is_the_kernel_of_that_expert_alone():
    torch.manual_seed(0)
    k = GatedExpertKernel(3, 2).double()
    with torch.no_grad():
        k.gate_logits.copy_(torch.tensor([-50.0, 50.0, -50.0]))
    x = torch.rand(6, 6, dtype=torch.float64)
    only = k.base(x[:, 2:4]).to_dense()
    assert torch.allclose(k(x).to_dense(), only, atol=1e-10)
    assert k.weights().argmax() == 1


def test_matern_ard_is_what_the_additive_blocks_use():
    k = AdditiveExpertKernel([4])
    assert k.kernels[0].base_kernel.lengthscale.shape[-1] == matern_ard(4).lengthscale.shape[-1]


@pytest.fixture(scope="module")
def gaps():
    df = load_bandgap_ladder(["expt"])
    return df[df.value > 0].sample(120, random_state=0).reset_index(drop=True)


@pytest.mark.slow
def test_the_mixture_finds_the_source_that_generated_the_target():
    """Target = a smooth function of one expert's output: that expert must get the weight."""
    frame = source_frame("mp_e_form").sample(150, random_state=1)
    X = torch.as_tensor(CompositionFeaturizer("extended").transform(frame["formula"].tolist()),
                        dtype=torch.float32)  # fmt: skip
    with torch.no_grad():
        y = experts.load("mp_e_form").predict(X).squeeze(-1).double().numpy()
    data = pd.DataFrame({"formula": frame["formula"], "fidelity": "t", "value": y})
    reg = MultiFidelityRegressor("single", experts=["mp_pbe_gap", "mp_e_form", "scan"],
                                 progress=False, max_iter=60).fit(data)  # fmt: skip
    w = reg.source_weights().set_index("source")["weight"]
    assert w.idxmax() == "mp_e_form" and w["mp_e_form"] > 0.5, w
    gated = MultiFidelityRegressor("single", experts=["mp_pbe_gap", "mp_e_form", "scan"],
                                   mixture="gated", progress=False, max_iter=60).fit(data)  # fmt: skip
    g = gated.source_weights().set_index("source")["weight"]
    assert g.idxmax() == "mp_e_form", g


@pytest.mark.slow
def test_mixture_of_experts_ar1_saves_and_loads_bit_identically(tmp_path):
    frame = small_ladder(40, n_extra=60)
    reg = MultiFidelityRegressor("ar1", experts=["mp_pbe_gap", "hse"], progress=False,
                                 max_iter=30).fit(frame)  # fmt: skip
    assert reg.dataset_.featurizer.preset == "extended"
    w = reg.source_weights()
    assert set(w["level"]) == {"pbe", "expt"}
    assert np.allclose(w.groupby("level")["weight"].sum(), 1.0)
    formulas = ["GaN", "ZnO", "NaCl"]
    mean, std = reg.predict(formulas, return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    path = reg.save(tmp_path / "moe.mfgp")
    back = MultiFidelityRegressor.load(path)
    m2, s2 = back.predict(formulas, return_std=True)
    assert np.array_equal(mean, m2) and np.array_equal(std, s2)
    pd.testing.assert_frame_equal(back.source_weights(), w)


@pytest.mark.slow
def test_hurdle_takes_the_experts_in_every_part_and_saves_them(tmp_path):
    frame = small_ladder(40, n_extra=60)
    frame.loc[frame.index[::7], "value"] = 0.0  # metals at both fidelities
    hurdle = HurdleRegressor(experts=["mp_pbe_gap", "scan"], progress=False,
                             regressor_options={"max_iter": 20},
                             latent={"max_iter": 10}).fit(frame)  # fmt: skip
    for part in (hurdle.regressor_, hurdle.classifier_, hurdle.latent_):
        assert part.experts == ["mp_pbe_gap", "scan"]
        assert part.dataset_.featurizer.preset == "extended"
    assert hurdle.regressor_.mixture == "additive"
    assert set(hurdle.regressor_.source_weights()["level"]) == {"pbe", "expt"}
    formulas = ["GaN", "ZnO", "Cu"]
    point, std = hurdle.predict(formulas, return_std=True)
    assert np.all(point >= 0) and np.all(std > 0)
    back = HurdleRegressor.load(hurdle.save(tmp_path / "hurdle.mfgp"))
    p2, s2 = back.predict(formulas, return_std=True)
    assert np.array_equal(point, p2) and np.array_equal(std, s2)


def test_experts_and_deep_features_are_exclusive(gaps):
    with pytest.raises(InputDataError, match="two input spaces"):
        MultiFidelityRegressor("single", experts="all", deep_features=True,
                               progress=False).fit(gaps)  # fmt: skip


def test_concat_mixture_has_no_weights_to_report(gaps):
    reg = MultiFidelityRegressor("single", experts=["scan", "hse"], mixture="concat",
                                 progress=False, max_iter=10).fit(gaps)  # fmt: skip
    with pytest.raises(InputDataError, match="concat"):
        reg.source_weights()
    plain = MultiFidelityRegressor("single", progress=False, max_iter=5).fit(gaps)
    with pytest.raises(InputDataError, match="experts="):
        plain.source_weights()


@pytest.mark.slow
def test_rank_sources_cross_validates_every_source_and_magpie(gaps):
    ranking = experts.rank_sources(gaps[["formula", "value"]], ["scan", "mp_pbe_gap"], folds=3,
                                   max_iter=20)  # fmt: skip
    assert sorted(ranking["source"]) == ["magpie", "mp_pbe_gap", "scan"]
    assert list(ranking["rank"]) == [1, 2, 3]
    assert ranking["mae"].is_monotonic_increasing
    assert ranking["coverage_90"].between(0, 1).all()
    with pytest.raises(InputDataError, match="fidelities"):
        experts.rank_sources(small_ladder(10), ["scan"])


def test_plot_source_weights_draws_a_bar_per_source_and_level():
    import matplotlib

    matplotlib.use("Agg")
    w = pd.DataFrame({"level": ["pbe", "pbe", "expt", "expt"], "source": ["a", "b", "a", "b"],
                      "weight": [0.7, 0.3, 0.1, 0.9]})  # fmt: skip
    ax = experts.plot_source_weights(w)
    assert len(ax.patches) == 4
    assert json.dumps(experts.card("scan"))  # cards are plain JSON
