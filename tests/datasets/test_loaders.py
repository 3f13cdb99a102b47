import numpy as np
import pytest

from mfgp.datasets import (
    attribution,
    load_bandgap_ladder,
    load_expt_is_metal,
    load_formation_enthalpy,
    load_steels_yield,
)
from mfgp.exceptions import UnknownFidelityError

COLUMNS = ["formula", "composition", "fidelity", "value", "source", "material_id"]


@pytest.fixture(scope="module")
def ladder():
    return load_bandgap_ladder()


def _value(df, comp, fid):
    rows = df[(df.composition == comp) & (df.fidelity == fid)]
    assert len(rows) == 1, (comp, fid, len(rows))
    return float(rows.value.iloc[0])


def test_bandgap_counts(ladder):
    assert list(ladder.columns[:6]) == COLUMNS
    counts = ladder.groupby("fidelity").size()
    assert counts["expt"] == 4604
    assert counts["pbe"] == 49546  # one ground state per composition of MP 2018
    assert counts["hse"] == 5101 and counts["gllb-sc"] == 2288 and counts["scan"] == 447
    expt = ladder[ladder.fidelity == "expt"]
    pbe = ladder[ladder.fidelity == "pbe"]
    shared = set(expt.composition) & set(pbe.composition)
    assert 3200 <= len(shared) <= 3260  # about 3,230 per the data README
    assert (expt.value == 0).mean() == pytest.approx(0.53, abs=0.01)
    m = expt.merge(pbe, on="composition")
    nz = m[m.value_x > 0]
    assert abs((nz.value_x - nz.value_y).abs().mean() - 1.04) < 0.02


def test_every_experimental_metal_has_a_pbe_gap(ladder):
    # a property of this data set that docs/metals.md warns about: the PBE gap (and whether
    # there is one) is very informative of experimental metallicity here
    expt = ladder[ladder.fidelity == "expt"]
    has_pbe = expt.composition.isin(set(ladder[ladder.fidelity == "pbe"].composition))
    metal = expt.value == 0
    assert metal.sum() == 2450 and (metal & ~has_pbe).sum() == 0
    assert (~has_pbe).sum() == 1376


def test_bandgap_spot_values(ladder):
    # ground-state PBE of Si (mp-149) and the experimental TiO2 gap
    assert _value(ladder, "Si", "pbe") == pytest.approx(0.6119, abs=1e-4)
    assert _value(ladder, "TiO2", "expt") == pytest.approx(3.3)
    assert _value(ladder, "LiF", "expt") == pytest.approx(11.7)
    assert _value(ladder, "GaAs", "hse") == pytest.approx(0.6345, abs=1e-3)
    assert (
        ladder.loc[(ladder.composition == "Si") & (ladder.fidelity == "pbe"), "material_id"].item()
        == "mp-149"
    )
    # the join is by reduced composition: the formula as written may differ
    assert set(ladder.composition) >= {"Fe2O3", "NaN"}


def test_bandgap_fidelity_selection_and_order():
    df = load_bandgap_ladder(["expt", "pbe"])
    assert list(dict.fromkeys(df.fidelity)) == ["pbe", "expt"]
    with pytest.raises(UnknownFidelityError, match="'pb'.*'pbe'"):
        load_bandgap_ladder(["pb", "expt"])


def test_formation_enthalpy():
    df = load_formation_enthalpy(repeats="keep")  # every row of the Kim 2017 table
    counts = df.groupby("fidelity").size()
    assert counts["expt"] == 1196 and counts["mp"] == 701 and counts["oqmd"] == 746
    kim = df.pivot(index="entry", columns="fidelity", values="value")
    both = kim.dropna(subset=["expt", "mp"])
    assert len(both) == 643
    assert (both.expt - both.mp).abs().mean() == pytest.approx(0.075, abs=0.002)
    assert len(kim.dropna()) == 601
    sc = df[(df.formula == "ScAg2")].set_index("fidelity").value
    assert sc["expt"] == pytest.approx(-0.2809) and sc["oqmd"] == pytest.approx(-0.30750919)


def test_formation_pool_is_opt_in():
    df = load_formation_enthalpy(["mp_e_form", "expt"], repeats="keep")
    assert (df.fidelity == "mp_e_form").sum() == 132752
    pool = load_formation_enthalpy(["mp_e_form"])  # the ground state per composition
    assert len(pool) == pool.composition.nunique() == 95118
    assert pool.set_index("composition").value["Si"] == pytest.approx(
        df[(df.composition == "Si") & (df.fidelity == "mp_e_form")].value.min())


def test_formation_enthalpy_resolves_its_repeats_by_the_median():
    # issue 37: the Kim 2017 table lists 89 compounds more than once (Y5Si3: -0.7431, -0.8333);
    # the loader keeps one row per composition and level, the median, so our own data raise no
    # ConflictingDuplicatesWarning (the README fits this frame)
    import warnings

    from mfgp.data import MultiFidelityDataset

    df = load_formation_enthalpy()
    assert not df.duplicated(["composition", "fidelity"]).any()
    assert df.groupby("fidelity").size().to_dict() == {"expt": 1132, "mp": 632, "oqmd": 674}
    y = df[df.composition == "Y5Si3"].set_index("fidelity")
    assert y.value["expt"] == pytest.approx((-0.7431 - 0.8333) / 2)
    assert y.entry.nunique() == 1  # the same entry at every level: pivot on it pairs them
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MultiFidelityDataset.from_frame(df)


def test_other_loaders():
    metal = load_expt_is_metal()
    assert len(metal) == 4921 and set(np.unique(metal.value)) == {0.0, 1.0}
    steel = load_steels_yield()
    assert len(steel) == 312 and steel.value.between(100, 4000).all()
    assert "CC-BY" in attribution()


def test_metallicity_tasks():
    from mfgp.datasets import load_metallicity

    df = load_metallicity(["pbe", "is_metal", "expt"])
    counts = df.groupby("fidelity").size()
    assert counts["expt"] == 4604 and counts["is_metal"] == 4921
    expt = df[df.fidelity == "expt"]
    assert 0.5 < expt.value.mean() < 0.56  # 53% of the experimental gaps are zero
    assert set(df.value.unique()) == {0.0, 1.0}
    assert list(dict.fromkeys(df.fidelity)) == ["pbe", "is_metal", "expt"]
    with pytest.raises(UnknownFidelityError, match="unknown metallicity task 'colour'"):
        load_metallicity(["colour"])
