"""Deep feature extractors, pretrained on abundant low-fidelity data."""

from mfgp.nn.extractor import (
    FeatureExtractor,
    PretrainReport,
    load_extractor,
    pretrain,
    save_extractor,
)

__all__ = ["FeatureExtractor", "PretrainReport", "load_extractor", "pretrain", "save_extractor"]
