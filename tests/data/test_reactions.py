"""Reactions as weights on per-atom formation enthalpies, and their prediction by the facade."""

import numpy as np
import pandas as pd
import pytest

from mfgp.data.reactions import parse_reaction
from mfgp.datasets import load_formation_enthalpy
from mfgp.estimators import MultiFidelityRegressor
from mfgp.exceptions import InputDataError


def test_weights_are_coefficient_times_atoms_and_elements_drop_out():
    r = parse_reaction("Al + Fe -> AlFe")
    assert r.formulas == ["AlFe"] and r.weights.tolist() == [2.0]
    r = parse_reaction("Al2Fe3 => AlFe + AlFe2")
    assert dict(zip(r.formulas, r.weights)) == {"Al2Fe3": -5.0, "AlFe": 2.0, "AlFe2": 3.0}
    given = parse_reaction("2 Fe + 1.5 O2 = Fe2O3")
    assert given.formulas == ["Fe2O3"] and given.weights.tolist() == [5.0]


@pytest.mark.parametrize("text, match", [
    ("AlFe + Al", "reactants -> products"),
    ("Al + Xq -> AlXq", "'Xq' has unknown element 'Xq'"),
    ("Fe -> Cu", "cannot be balanced"),
    ("2 Al + Fe -> AlFe", "cannot be balanced"),
    ("2 Al + 2 Fe -> AlFe", "cannot be balanced"),
])  # fmt: skip
def test_bad_reactions_name_the_reaction_and_the_term(text, match):
    with pytest.raises(InputDataError, match=match):
        parse_reaction(text)


@pytest.fixture(scope="module")
def enthalpy_model():
    df = load_formation_enthalpy(["mp", "expt"])
    keep = df[df.fidelity == "expt"].sample(150, random_state=0).composition
    df = df[df.composition.isin(keep)]
    return MultiFidelityRegressor("ar1", progress=False, max_iter=20).fit(df, conflict_warn=None)


def test_combination_of_a_term_with_itself_has_no_variance(enthalpy_model):
    mean, std, indep = enthalpy_model.predict_combination(["AlNi", "AlNi"], [1.0, -1.0])
    assert abs(mean) < 1e-9 and std < 1e-6 and indep > 1e-3
    m, s = enthalpy_model.predict(["AlNi"], return_std=True)
    # one term: the combination is the scaled marginal
    mean3, std3, indep3 = enthalpy_model.predict_combination(["AlNi"], [3.0])
    assert np.isclose(mean3, 3 * m[0]) and np.isclose(std3, 3 * s[0]) and np.isclose(indep3, std3)


def test_fidelity_per_term_gives_the_discrepancy(enthalpy_model):
    m_e = enthalpy_model.predict(["AlNi"])[0]
    m_d = enthalpy_model.predict(["AlNi"], fidelity="mp")[0]
    mean, std, indep = enthalpy_model.predict_combination(["AlNi", "AlNi"], [1.0, -1.0],
                                                          fidelity=["expt", "mp"])  # fmt: skip
    assert np.isclose(mean, m_e - m_d) and std <= indep
    with pytest.raises(InputDataError, match="one per term"):
        enthalpy_model.predict_combination(["AlNi", "AlNi"], [1.0, -1.0], fidelity=["expt"])
    with pytest.raises(InputDataError, match="for 2 terms"):
        enthalpy_model.predict_combination(["AlNi", "AlNi"], [1.0, -1.0, 2.0])


def test_reaction_energy_table_correlated_terms_cancel(enthalpy_model):
    table = enthalpy_model.reaction_energy(["Al + Ni -> AlNi", "Al2Ni3 -> AlNi + AlNi2"])
    assert list(table.columns) == ["reaction", "equation", "mean", "std", "std_independent",
                                   "lower_90", "upper_90"]  # fmt: skip
    m, s = enthalpy_model.predict(["AlNi"], return_std=True)
    first = table.iloc[0]
    assert np.isclose(first["mean"], 2 * m[0]) and np.isclose(first["std"], 2 * s[0])
    second = table.iloc[1]  # chemically similar compounds: positively correlated errors
    assert second["std"] < second["std_independent"]
    assert (table["lower_90"] < table["mean"]).all() and (table["mean"] < table["upper_90"]).all()
    assert isinstance(table, pd.DataFrame)
