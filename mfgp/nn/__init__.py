"""Deep feature extractors, pretrained on abundant low-fidelity data."""

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
