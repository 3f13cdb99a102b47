"""The source models' networks: an MLP on Magpie-style features and an element-set attention net.

Both read the raw output of the ``"extended"`` featurizer preset (264 columns: 132 Magpie
statistics, 6 stoichiometry norms, 8 valence-orbital fractions, then 118 element fractions) and
return ``out_dim`` bounded features (``tanh``), the input space a GP sees. Each has a linear
``head`` used only while the source model is trained on its computed property.

* :class:`~mfgp.nn.FeatureExtractor` (``arch="mlp"``) on columns 0-145, the hand-made features.
* :class:`ElementSetNet` (``arch="set"``) on columns 146-263, the composition itself: each
  element present is a learned embedding (initialised from its 22 Magpie properties) joined
  with encodings of its fraction; one self-attention layer lets the elements of a compound see
  each other (Roost, Goodall and Lee 2020; CrabNet, Wang et al. 2021); the set is pooled by a
  fraction-weighted mean and a learned attention pooling.

:class:`Expert` binds a network to its columns; :class:`ExpertStack` concatenates frozen
experts into one input space and knows the kernel that mixes them (:mod:`mfgp.kernels.experts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from mfgp.exceptions import InputDataError, ShapeError
from mfgp.nn.extractor import FeatureExtractor

__all__ = [
    "EXTENDED_COLUMNS",
    "MIXTURES",
    "ElementSetNet",
    "Expert",
    "ExpertStack",
    "Standardize",
]

#: column ranges of the ``"extended"`` featurizer preset that each architecture reads
EXTENDED_COLUMNS: dict[str, tuple[int, int]] = {"mlp": (0, 146), "set": (146, 264),
                                                "standardize": (0, 132)}  # fmt: skip
EXTENDED_WIDTH = 264
#: how an :class:`ExpertStack`'s experts are mixed in the GP kernel
MIXTURES = ("additive", "gated", "concat")


def element_properties() -> Tensor:
    """``118 x 22`` standardised Magpie properties of the elements (missing values 0)."""
    from mfgp.featurize.featurizer import _element_table

    _, columns = _element_table(True)
    table = np.stack([columns[k] for k in sorted(columns)], axis=1)
    mean = np.nanmean(table, axis=0)
    std = np.nanstd(table, axis=0)
    z = (table - mean) / np.where(std > 0, std, 1.0)
    return torch.as_tensor(np.nan_to_num(z), dtype=torch.float32)


class ElementSetNet(nn.Module):
    """Element fractions ``... x 118`` -> ``... x out_dim`` features, by attention over elements.

    Args:
        n_elements: length of the fraction vector (elements Z = 1..118).
        embed_dim: element embedding width (22 when initialised from Magpie properties).
        width: hidden width of each element's representation.
        heads: attention heads.
        out_dim: number of output features.
        embedding: ``n_elements x embed_dim`` initial embeddings (default: random).

    Example:
        >>> net = ElementSetNet(out_dim=8)
        >>> x = torch.zeros(2, 118); x[0, 7] = 0.6; x[0, 25] = 0.4; x[1, 13] = 1.0
        >>> net(x).shape
        torch.Size([2, 8])
    """

    def __init__(self, n_elements: int = 118, embed_dim: int = 22, width: int = 64,
                 heads: int = 4, out_dim: int = 16,
                 embedding: Tensor | None = None) -> None:  # fmt: skip
        super().__init__()
        self.config = {"arch": "set", "n_elements": n_elements, "embed_dim": embed_dim,
                       "width": width, "heads": heads, "out_dim": out_dim}  # fmt: skip
        self.embedding = nn.Embedding(n_elements, embed_dim)
        if embedding is not None:
            if tuple(embedding.shape) != (n_elements, embed_dim):
                raise ShapeError(f"embedding must be {n_elements} x {embed_dim}")
            with torch.no_grad():
                self.embedding.weight.copy_(embedding)
        self.element_in = nn.Sequential(nn.Linear(embed_dim + 3, width), nn.SiLU(),
                                        nn.Linear(width, width))  # fmt: skip
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(width)
        self.feed = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU(),
                                  nn.Linear(2 * width, width))  # fmt: skip
        self.norm2 = nn.LayerNorm(width)
        self.gate = nn.Linear(width, 1)
        self.body = nn.Sequential(nn.Linear(2 * width, width), nn.SiLU(),
                                  nn.Linear(width, out_dim), nn.Tanh())  # fmt: skip
        self.head = nn.Linear(out_dim, 1)

    def forward(self, frac: Tensor) -> Tensor:
        """Features of compositions given as element-fraction vectors."""
        n_el = self.config["n_elements"]
        if frac.shape[-1] != n_el:
            raise ShapeError(f"the element-set net takes {n_el} fractions, got {frac.shape[-1]}")
        lead = frac.shape[:-1]
        frac = frac.reshape(-1, n_el).to(self.head.weight)
        if frac.shape[0] == 0:
            return frac.new_zeros(*lead, self.config["out_dim"])
        m = max(int((frac > 0).sum(-1).max()), 1)
        vals, idx = frac.topk(m, dim=-1)  # the elements present, largest fraction first
        mask = vals > 0
        f = vals.clamp_min(0).unsqueeze(-1)
        enc = torch.cat([self.embedding(idx), f, torch.log(f.clamp_min(1e-6)) / 10, f.sqrt()], -1)
        h = self.element_in(enc)
        a, _ = self.attention(h, h, h, key_padding_mask=~mask, need_weights=False)
        h = self.norm1(h + a)
        h = self.norm2(h + self.feed(h))
        w = torch.where(mask, vals, torch.zeros_like(vals))
        w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
        mean = (w.unsqueeze(-1) * h).sum(-2)
        score = self.gate(h).squeeze(-1) + torch.log(w.clamp_min(1e-12))
        att = torch.softmax(score.masked_fill(~mask, -math.inf), dim=-1)
        pooled = (att.unsqueeze(-1) * h).sum(-2)
        out = self.body(torch.cat([mean, pooled], -1))
        return out.reshape(*lead, self.config["out_dim"])

    def predict(self, frac: Tensor) -> Tensor:
        """The training head's prediction of the source property, ``... x 1``."""
        return self.head(self(frac))


class Standardize(nn.Module):
    """Hand-made features as an expert: ``(x - mean) / std``, nothing learned, no prediction.

    Lets a mixture weigh the Magpie statistics themselves against the learned sources (they
    win once the target has many labels). The statistics are fixed when the library is built.
    """

    def __init__(self, in_dim: int, mean: Tensor | None = None, std: Tensor | None = None) -> None:
        super().__init__()
        self.config = {"arch": "standardize", "in_dim": in_dim, "out_dim": in_dim}
        self.register_buffer("mean", torch.zeros(in_dim) if mean is None else mean.clone())
        self.register_buffer("std", torch.ones(in_dim) if std is None else std.clone())
        self.head = None

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return (x.to(self.mean) - self.mean) / self.std


def build_net(config: dict) -> nn.Module:
    """An untrained network of an expert's ``net`` config (weights come from a state dict)."""
    arch = config.get("arch", "mlp")
    if arch == "set":
        keys = ("n_elements", "embed_dim", "width", "heads", "out_dim")
        return ElementSetNet(**{k: int(config[k]) for k in keys})
    if arch == "standardize":
        return Standardize(int(config["in_dim"]))
    if arch == "mlp":
        return FeatureExtractor(int(config["in_dim"]), tuple(config["hidden"]),
                                int(config["out_dim"]))  # fmt: skip
    raise InputDataError(f"unknown expert architecture {arch!r}; mfgp knows 'mlp' and 'set'")


class Expert(nn.Module):
    """A frozen source network reading its columns of the ``"extended"`` features.

    Args:
        name: the source model's name in the library (e.g. ``"mp_e_form"``).
        net: an :class:`ElementSetNet` or a :class:`~mfgp.nn.FeatureExtractor`.
        columns: ``(start, stop)`` of the raw feature columns the net reads.
    """

    def __init__(self, name: str, net: nn.Module, columns: Sequence[int]) -> None:
        super().__init__()
        net_config = dict(net.config)
        net_config.setdefault("arch", "mlp")
        self.net = net
        width = int(net_config["out_dim"])
        self.has_prediction = getattr(net, "head", None) is not None
        self.config = {"name": name, "in_dim": EXTENDED_WIDTH, "columns": [int(c) for c in columns],
                       "features": width, "out_dim": width + int(self.has_prediction),
                       "prediction": self.has_prediction, "net": net_config}  # fmt: skip

    @property
    def name(self) -> str:
        """The source model's name."""
        return self.config["name"]

    def forward(self, x: Tensor) -> Tensor:
        """``... x (features + 1)``: the learned features, then the source prediction."""
        z = self.features(x)
        return torch.cat([z, self.net.head(z)], dim=-1) if self.has_prediction else z

    def features(self, x: Tensor) -> Tensor:
        """The learned features ``... x features`` alone."""
        if x.shape[-1] != EXTENDED_WIDTH:
            raise ShapeError(
                f"expert {self.name!r} reads the {EXTENDED_WIDTH} columns of the 'extended' "
                f"featurizer preset; got {x.shape[-1]} (featurize with "
                "CompositionFeaturizer('extended'))"
            )
        a, b = self.config["columns"]
        return self.net(x[..., a:b])

    def predict(self, x: Tensor) -> Tensor:
        """The source property as the network predicts it (standardised units), ``... x 1``."""
        if not self.has_prediction:
            raise InputDataError(f"expert {self.name!r} has no source property to predict")
        return self.net.head(self.features(x))

    @classmethod
    def from_config(cls, config: dict) -> Expert:
        """An untrained expert of this shape."""
        return cls(config["name"], build_net(config["net"]), config["columns"])


class ExpertStack(nn.Module):
    """Several frozen experts side by side: ``... x 264`` -> ``... x (sum of out_dim)``.

    The GP's input space is the concatenation; ``mixture`` says which kernel combines the
    experts (:func:`mfgp.kernels.experts.mixture_kernel`): ``"additive"`` (a kernel per expert,
    weights by marginal likelihood), ``"gated"`` (a softmax-gated sum of the experts' features,
    one kernel on it) or ``"concat"`` (one ARD kernel on all the features).

    Args:
        experts: the experts (their weights are frozen).
        mixture: one of :data:`MIXTURES`.
    """

    def __init__(self, experts: Sequence[Expert], mixture: str = "additive") -> None:
        super().__init__()
        if mixture not in MIXTURES:
            raise InputDataError(f"mixture must be one of {MIXTURES}; got {mixture!r}")
        if not experts:
            raise InputDataError("an expert stack needs at least one expert")
        names = [e.name for e in experts]
        if len(set(names)) != len(names):
            raise InputDataError(f"an expert appears twice in {names}")
        if mixture == "gated" and len({e.config["out_dim"] for e in experts}) > 1:
            raise InputDataError("a gated mixture needs experts with the same number of features")
        self.experts = nn.ModuleList(experts)
        self.requires_grad_(False)
        self.eval()
        self.config = {"kind": "experts", "mixture": mixture, "in_dim": EXTENDED_WIDTH,
                       "out_dim": sum(e.config["out_dim"] for e in experts),
                       "experts": [e.config for e in experts]}  # fmt: skip

    @property
    def names(self) -> list[str]:
        """The experts' names, in the order of their feature blocks."""
        return [e.name for e in self.experts]

    @property
    def blocks(self) -> list[int]:
        """Number of features of each expert."""
        return [e.config["out_dim"] for e in self.experts]

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return torch.cat([e(x) for e in self.experts], dim=-1)

    def data_kernel(self, d: int, active_dims: Sequence[int] | None = None):
        """The kernel on this stack's features (:func:`~mfgp.kernels.experts.mixture_kernel`)."""
        from mfgp.kernels.experts import mixture_kernel

        if d != self.config["out_dim"]:
            raise ShapeError(f"the expert stack has {self.config['out_dim']} features, not {d}")
        return mixture_kernel(self.config["mixture"], self.blocks, active_dims=active_dims,
                              linear=[e.has_prediction for e in self.experts])  # fmt: skip

    @classmethod
    def from_config(cls, config: dict) -> ExpertStack:
        """An expert stack of this shape (weights from a state dict)."""
        return cls([Expert.from_config(c) for c in config["experts"]], config["mixture"])
