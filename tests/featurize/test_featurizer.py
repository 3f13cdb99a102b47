import time
import warnings

import numpy as np
import pytest

from mfgp.datasets import load_raw
from mfgp.exceptions import InvalidFormulaError, UnknownElementError
from mfgp.featurize import CompositionFeaturizer, FeatureCache, parse_formula, parse_formulas


@pytest.fixture(scope="module")
def real_formulas():
    df = load_raw("matbench_expt_gap.csv")
    picks = df["formula"].sample(250, random_state=1).tolist()
    # edge cases: noble gases (NaN electronegativity), parentheses, fractions, heavy elements
    return picks + ["He", "NeXe", "Ca(OH)2", "Fe2O3", "Og2", "Li0.5CoO2", "NaN", "U3O8"]


def _matminer(formulas, preset):
    from matminer.featurizers.composition import (
        ElementFraction,
        ElementProperty,
        Stoichiometry,
        ValenceOrbital,
    )
    from pymatgen.core import Composition

    feats = [ElementProperty.from_preset("magpie")]
    if preset == "extended":
        feats += [Stoichiometry(), ValenceOrbital(), ElementFraction()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [sum((list(f.featurize(Composition(x))) for f in feats), []) for x in formulas]
    return np.array(rows, dtype=float), sum((f.feature_labels() for f in feats), [])


@pytest.mark.parametrize("preset", ["magpie", "extended"])
def test_agrees_with_matminer(real_formulas, preset):
    ref, labels = _matminer(real_formulas, preset)
    fz = CompositionFeaturizer(preset)
    X = fz.transform(real_formulas)
    assert fz.feature_labels() == labels
    assert X.shape == ref.shape and X.dtype == np.float64
    np.testing.assert_allclose(X, ref, rtol=0, atol=1e-8, equal_nan=True)


def test_no_imputation_gives_nan_like_matminer_and_marks_the_row_failed():
    fz = CompositionFeaturizer("magpie", impute_nan=False)
    res = fz.featurize(["He", "NaCl"])
    # He lacks some Magpie properties: those statistics are NaN, NaCl's are not
    assert np.isnan(res.X[0]).any() and not np.isnan(res.X[1]).any()
    # a NaN row is a failed row (it used to be marked valid and broke a model later)
    assert res.valid.tolist() == [False, True]
    assert "'He'" in res.errors[0] and "impute_nan=True" in res.errors[0]
    with pytest.raises(InvalidFormulaError, match="row 0: formula 'He' has no tabulated value"):
        fz.transform(["He", "NaCl"])
    # the dataset names the input row of the composition
    from mfgp.data import MultiFidelityDataset

    with pytest.raises(InvalidFormulaError, match="row 7: formula 'He'"):
        MultiFidelityDataset.from_arrays(["NaCl", "He"], ["expt", "expt"], [1.0, 0.0],
                                         featurizer=fz, row_labels=[3, 7])


def test_bad_rows_are_masked_with_reasons():
    fz = CompositionFeaturizer("magpie")
    res = fz.featurize(["NaCl", "Fe2Xx3", "((", None, "Fe0", "MgO"])
    assert res.valid.tolist() == [True, False, False, False, False, True]
    assert "unknown element 'Xx'" in res.errors[1]
    assert "'(('" in res.errors[2]
    assert "not a string" in res.errors[3]
    assert "no atoms" in res.errors[4]
    assert np.isnan(res.X[1]).all() and not np.isnan(res.X[5]).any()
    with pytest.raises(UnknownElementError, match=r"row 1: .*'Fe2Xx3'.*3 more rows failed"):
        fz.transform(["NaCl", "Fe2Xx3", "((", None, "Fe0", "MgO"])


def test_featurize_dataframe_names_the_index():
    import pandas as pd

    df = pd.DataFrame({"formula": ["NaCl", "Qq2"]}, index=["a", "b"])
    fz = CompositionFeaturizer("magpie")
    with pytest.raises(UnknownElementError, match="row b"):
        fz.featurize_dataframe(df)
    out = fz.featurize_dataframe(df, errors="mask")
    assert out["featurized"].tolist() == [True, False]
    assert out.shape[1] == 1 + 132 + 2


def test_parse_formula_contract():
    assert parse_formula("O3Fe2").reduced == "Fe2O3"
    assert parse_formula("Fe3O4").chemsys == "Fe-O"
    assert parse_formula("NaN").reduced == "NaN"  # sodium nitride, not a missing value
    with pytest.raises(InvalidFormulaError, match="keep_default_na"):
        parse_formula(float("nan"))
    with pytest.raises(ValueError):  # mfgp errors subclass the matching builtin
        parse_formula("fe2o3")
    assert parse_formulas(["", "Si"]).valid == [False, True]


def test_cache_memory_and_disk(tmp_path):
    fz = CompositionFeaturizer("magpie", cache=tmp_path)
    X1 = fz.transform(["NaCl", "MgO"])
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and "magpie-v2" in files[0].name
    # a fresh featurizer over the same directory reads the rows back without recomputing
    fz2 = CompositionFeaturizer("magpie", cache=tmp_path)
    cache = fz2._cache()
    assert cache.get(fz2.version, "NaCl") is not None
    np.testing.assert_array_equal(fz2.transform(["MgO", "NaCl"]), X1[::-1])
    shared = FeatureCache()
    CompositionFeaturizer("extended", cache=shared).transform(["NaCl"])
    assert len(shared) == 1


def test_unknown_preset_names_choices():
    with pytest.raises(ValueError, match="choose one of"):
        CompositionFeaturizer("nope").transform(["NaCl"])


@pytest.mark.slow
def test_pbe_pool_featurizes_fast():
    pool = load_raw("mp2018_pbe_gaps.csv.gz")["formula"].unique()
    t0 = time.perf_counter()
    X = CompositionFeaturizer("extended", cache=False).transform(pool)
    elapsed = time.perf_counter() - t0
    assert X.shape == (len(pool), 264) and np.isfinite(X).all()
    assert elapsed < 45, f"featurizing {len(pool)} formulas took {elapsed:.1f} s"


def test_cache_is_bounded_first_in_first_out():
    from mfgp.exceptions import InputDataError
    from mfgp.featurize import FeatureCache

    cache = FeatureCache(max_rows=3)
    cache.put("v", ["A", "B"], np.zeros((2, 1)))
    cache.put("v", ["C", "D"], np.ones((2, 1)))
    assert len(cache) == 3 and cache.get("v", "A") is None and cache.get("v", "D") is not None
    cache.put("v", ["B"], np.full((1, 1), 2.0))  # re-put: B is the newest now
    cache.put("v", ["E"], np.ones((1, 1)))
    assert cache.get("v", "C") is None and cache.get("v", "B")[0] == 2.0
    with pytest.raises(InputDataError, match="max_rows must be >= 1"):
        FeatureCache(max_rows=0)


@pytest.mark.parametrize("preset", ["magpie", "extended"])
def test_features_are_the_same_bits_however_spelled_and_batched(preset):
    """A composition's raw features key its composition effect (mfgp.kernels.effect): they
    must not depend on the element order a formula is written in, nor on the batch's padding
    (the review found 212 of 300 formulas changed bits beside a 9-element formula)."""
    f = CompositionFeaturizer(preset, cache=False)
    alone = f.transform(["Cu2ZnSnS4", "LiFeO2", "NaCl"])
    respelled = f.transform(["SnS4ZnCu2", "O2FeLi", "ClNa"])
    big = "LiNaKRbCsMgCaSrBaO9"  # 10 elements: the padding is wider
    batched = f.transform([big, "Cu2ZnSnS4", "LiFeO2", "NaCl"])[1:]
    assert np.array_equal(alone, respelled)
    assert np.array_equal(alone, batched)


def test_a_long_bad_formula_gives_a_one_line_message():
    """A whole batch passed as one formula (a list, or its text) is named in 60 characters with
    its length, not echoed in full (it was 4,000 characters, twice, before)."""
    from mfgp.featurize.composition import parse_formulas

    batch = ["NaCl"] * 500
    res = parse_formulas([str(batch), batch, "Xx2" + "O" * 100])
    for reason in res.errors.values():
        assert len(reason) < 250, reason
    assert "(4,002 characters)" in res.errors[0]
    assert "pass one formula per row" in res.errors[1]
    assert "unknown element 'Xx'" in res.errors[2]


def test_plain_formulas_parse_as_the_general_path_does():
    """A plain formula ("Fe2O3") skips building a pymatgen Composition (issue 35: a screen
    parses every candidate); it must give the general path's parse on every shipped formula
    and on enumerated candidates, and leave every other spelling to the general path."""
    from mfgp.candidates import enumerate_compositions
    from mfgp.datasets import load_bandgap_ladder, load_formation_enthalpy
    from mfgp.featurize import composition as comp

    shipped = set(load_bandgap_ladder().formula) | set(load_formation_enthalpy().formula)
    pool = [f for chunk in enumerate_compositions(
        ["H", "Li", "O", "Na", "S", "Cl", "Fe", "Ar", "Xe", "P", "N", "C"], n_elements=(1, 2, 3),
        max_atoms_per_formula=6) for f in chunk]  # fmt: skip
    extra = ["O", "H", "LiO", "CsO", "NaNa", "OOLi2", "Fe0O", "Fe2O3.5", "Ca(OH)2", "D2O", "Xx2",
             "Ca3(Fe(CN)6)2", "K4Fe(CN)6", "Ca(OH)2(H2O)2", "(NH4)2SO4", "Fe(CO)5", "XeF4",
             "ArClF", "Fe()2", "(Fe", "Fe)2", "Fe(O)0", "Fe(SO4)0.5", "(Li)(O)",
             "Fe999999999999999O2", "(H)9999999999999", "Zn3ArO3", "ArZn3O3"]
    plain = 0
    for formula in sorted(shipped) + pool + extra:
        fast = comp._parse_plain(formula)
        if fast is None:
            continue
        plain += 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the fast path raises no pymatgen warning either
            assert comp._parse_plain(formula) == fast
        general = comp._parse_general(formula)
        assert fast == general, formula
    assert plain > 0.9 * len(pool)
    assert comp._parse_plain("Xx2") is None
    assert comp._parse_plain("Fe0O") is None and comp._parse_plain("Fe2O3.5") is None
    # groups with integer counts are plain (12,000 of the shipped compositions are written so)
    assert comp._parse_plain("Ca(OH)2").reduced == "Ca(HO)2"
    assert comp._parse_plain("Ca3(Fe(CN)6)2").amounts == (("Ca", 3.0), ("Fe", 2.0), ("C", 12.0),
                                                         ("N", 12.0))  # fmt: skip
    for other in ("Fe()2", "(Fe", "Fe)2", "Fe(O)0", "Fe(SO4)0.5"):
        assert comp._parse_plain(other) is None, other  # the general path reads or refuses it
    assert sum(comp._parse_plain(f) is not None and "(" in f for f in shipped) > 10_000
    # counts that floats cannot hold exactly, or that pymatgen writes as 1e+16 when it expands
    # a group, are the general path's (it reads or refuses them; review of 31e9973)
    for huge in ("(H)10000000000000000", "Fe9007199254740993O2", "Fe" + "1" * 400,
                 "Fe" + "1" * 5000, "(Fe(H)4503599627370496)2"):
        assert comp._parse_plain(huge) is None
        try:  # the general path reads it or refuses it with mfgp's error, never another
            comp.parse_formula(huge)
        except InvalidFormulaError:
            pass
    assert comp._reduction_agrees()  # the installed pymatgen reduces as mfgp's copy


def test_a_pymatgen_that_reduces_otherwise_is_called_instead(monkeypatch):
    """mfgp's copy of pymatgen's reduction is used only where it agrees with the installed one
    (pymatgen before late 2025 ordered noble gases as written)."""
    from mfgp.featurize import composition as comp

    monkeypatch.setattr(comp, "_reduction_agrees", lambda: False)
    monkeypatch.setattr(comp, "_reduce_counts_here", lambda counts: pytest.fail("the copy ran"))
    assert comp._reduce_counts({"Fe": 4, "O": 6}) == "Fe2O3"
    assert comp._reduce_counts({"Li": 2, "O": 2}) == "Li2O2"  # a special formula
