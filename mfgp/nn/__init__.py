"""Deep feature extractors, pretrained on abundant low-fidelity data."""

import mfgp._deps  # noqa: F401  (first: the GP stack without its import warning)

# isort: split
from mfgp.nn.extractor import (
    FeatureExtractor,
    PretrainReport,
    load_extractor,
    pretrain,
    save_extractor,
)
from mfgp.nn.finetune import FinetuneReport, finetune_extractor

__all__ = [
    "FeatureExtractor",
    "FinetuneReport",
    "PretrainReport",
    "finetune_extractor",
    "load_extractor",
    "pretrain",
    "save_extractor",
]
