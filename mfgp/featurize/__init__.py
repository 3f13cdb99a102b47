"""Composition parsing and featurization (vectorised Magpie-style features, cached)."""

from mfgp.featurize.cache import FeatureCache
from mfgp.featurize.composition import (
    ParsedFormula,
    ParseResult,
    chemical_system,
    parse_formula,
    parse_formulas,
    reduced_composition,
    streaming,
)
from mfgp.featurize.featurizer import PRESETS, CompositionFeaturizer, FeaturizeResult

__all__ = [
    "CompositionFeaturizer",
    "FeatureCache",
    "FeaturizeResult",
    "PRESETS",
    "ParseResult",
    "ParsedFormula",
    "chemical_system",
    "parse_formula",
    "parse_formulas",
    "reduced_composition",
    "streaming",
]
