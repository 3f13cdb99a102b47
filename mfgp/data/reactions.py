"""Chemical reactions as linear combinations of per-atom formation enthalpies.

A reaction energy is ``sum_i c_i N_i H_f(x_i)``: ``c_i`` the balanced coefficient (negative for
reactants), ``N_i`` the atoms in one formula unit of ``x_i`` as written and ``H_f`` the formation
enthalpy per atom. Elements have ``H_f = 0`` by definition, so they carry no term (and no
uncertainty). The weights are what :meth:`mfgp.MultiFidelityRegressor.predict_combination`
takes; :meth:`~mfgp.MultiFidelityRegressor.reaction_energy` does both steps.

Example:
    >>> r = parse_reaction("Li2O + SiO2 -> Li2SiO3")
    >>> r.formulas, r.weights.tolist()
    (['Li2O', 'SiO2', 'Li2SiO3'], [-3.0, -3.0, 6.0])
    >>> parse_reaction("Fe + O2 -> Fe2O3").equation
    '2 Fe + 1.5 O2 -> Fe2O3'
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from mfgp.exceptions import InputDataError, InvalidFormulaError
from mfgp.featurize.composition import parse_formula

__all__ = ["Reaction", "parse_reaction"]

_ARROW = re.compile(r"\s*(?:->|=>|→|=)\s*")
_TERM = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)?\s*(\S.*?)\s*$")


@dataclasses.dataclass(frozen=True)
class Reaction:
    """A balanced reaction, reduced to the compounds whose formation enthalpy it needs.

    Attributes:
        equation: the balanced reaction as text (pymatgen's form).
        formulas: the compounds (elements left out: their formation enthalpy is 0).
        weights: ``c_i * N_i`` per compound: the reaction energy (eV per reaction as written)
            is ``weights @ H_f`` with ``H_f`` in eV/atom.
    """

    equation: str
    formulas: list[str]
    weights: np.ndarray


def parse_reaction(text: str) -> Reaction:
    """Parse and balance ``"A + B -> C"`` (arrows ``->``, ``=>``, ``=``; coefficients optional).

    Without coefficients the reaction is balanced (pymatgen's ``Reaction``); with any, it is
    checked to be balanced as given (a term without one has 1).

    Raises:
        InputDataError: no arrow, an unknown formula, or a reaction that cannot be balanced,
            naming the reaction and the term.
    """
    from pymatgen.analysis.reaction_calculator import (
        BalancedReaction,
        ReactionError,
    )
    from pymatgen.analysis.reaction_calculator import (
        Reaction as PmgReaction,
    )
    from pymatgen.core import Composition

    if not isinstance(text, str):
        raise InputDataError(f"a reaction is a string like 'A + B -> C'; got {text!r}")
    sides = _ARROW.split(text.strip())
    if len(sides) != 2 or not all(s.strip() for s in sides):
        raise InputDataError(
            f"reaction {text!r}: write it as 'reactants -> products', e.g. 'Li2O + SiO2 -> "
            "Li2SiO3'"
        )
    parsed: list[list[tuple[float | None, Composition, str]]] = []
    for side in sides:
        terms = []
        for raw in side.split("+"):
            match = _TERM.match(raw)
            if match is None:
                raise InputDataError(f"reaction {text!r}: empty term between '+' signs")
            coeff, formula = match.groups()
            try:
                comp = Composition(dict(parse_formula(formula).amounts))
            except InvalidFormulaError as err:
                raise InputDataError(f"reaction {text!r}: {err}") from None
            terms.append((None if coeff is None else float(coeff), comp, formula))
        parsed.append(terms)
    given = any(c is not None for side in parsed for c, _, _ in side)
    reactants = [comp for _, comp, _ in parsed[0]]
    products = [comp for _, comp, _ in parsed[1]]
    try:
        if not given:
            rxn = PmgReaction(reactants, products)
        else:  # a term without a coefficient has 1
            rxn = BalancedReaction(
                {comp: 1.0 if c is None else c for c, comp, _ in parsed[0]},
                {comp: 1.0 if c is None else c for c, comp, _ in parsed[1]},
            )
    except ReactionError as err:
        raise InputDataError(f"reaction {text!r} cannot be balanced: {err}") from None
    formulas, weights = [], []
    for comp in rxn.all_comp:
        if len(comp.elements) == 1:
            continue  # an element in its standard state: H_f = 0
        coeff = round(float(rxn.get_coeff(comp)), 9)  # pymatgen balances in floating point
        if abs(coeff) < 1e-12:
            continue
        formulas.append(next(f for side in parsed for _, c, f in side if c == comp))
        weights.append(coeff * comp.num_atoms)
    return Reaction(str(rxn), formulas, np.asarray(weights, dtype=float))
