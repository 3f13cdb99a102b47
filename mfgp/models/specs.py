"""Models as specs: small frozen, JSON-serializable descriptions that build and fit a model.

A spec is what a saved model records instead of a pickle: ``spec.build(X, Y, Yvar)`` makes the
unfitted model from training tensors (raw contract inputs), ``spec.fit(model, options)`` fits
it, and ``spec.to_dict()`` / :func:`spec_from_dict` round-trip it through JSON. Loading a saved
model is ``build`` on the saved training tensors followed by ``load_state_dict``.

The architecture policies live here, in one place: which trainer an architecture uses
(``training="auto"``), how the explicit-latent chain is assembled (one implementation of the
observed latent), and the map from raw features to the GP's input space
(:class:`FeatureMapSpec`).

Example:
    >>> spec = AR1Spec(rho="linear")
    >>> spec_from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from botorch.models.model import Model
from gpytorch.means import ConstantMean
from torch import Tensor

from mfgp._rng import seeded_global_rng
from mfgp.exceptions import InputDataError, UnknownSpecError
from mfgp.kernels.coregional import AR1Kernel, default_data_kernel
from mfgp.kernels.effect import (
    KEY_COLUMNS,
    CompositionEffect,
    CompositionKeyedMap,
    WithCompositionEffect,
)
from mfgp.kernels.means import FidelityMean
from mfgp.models.base import feature_normalize
from mfgp.models.classifier import GPClassifier
from mfgp.models.features import FeatureMap, FeatureMapModel
from mfgp.models.latent import ExplicitLatentGP
from mfgp.models.multifidelity import AR1GP, MultiTaskGP, SingleFidelityGP

__all__ = [
    "AR1Spec",
    "ClassifierSpec",
    "FeatureMapSpec",
    "FitOptions",
    "LatentChainSpec",
    "ModelSpec",
    "MultiTaskSpec",
    "SPECS",
    "SingleSpec",
    "register_spec",
    "spec_from_dict",
]

#: spec name -> spec class (see :func:`register_spec`)
SPECS: dict[str, type[ModelSpec]] = {}


def register_spec(cls: type[ModelSpec]) -> type[ModelSpec]:
    """Class decorator: make a spec loadable by its ``name``."""
    if cls.name in SPECS and SPECS[cls.name] is not cls:
        raise InputDataError(f"a spec named {cls.name!r} is already registered")
    SPECS[cls.name] = cls
    return cls


def spec_from_dict(d: dict) -> ModelSpec:
    """The spec a :meth:`ModelSpec.to_dict` dictionary describes.

    Raises:
        UnknownSpecError: the name is not registered (a newer mfgp, or a plug-in not imported).
    """
    d = dict(d)
    name = d.pop("name", None)
    if name not in SPECS:
        raise UnknownSpecError(
            f"unknown model spec {name!r}; this mfgp knows {sorted(SPECS)} (a file written by a "
            "newer mfgp, or a spec registered by a package you have not imported)"
        )
    cls = SPECS[name]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise UnknownSpecError(f"spec {name!r} has no field(s) {sorted(unknown)}")
    return cls(**d)


def _data_kernel(feature_map: torch.nn.Module | None) -> Callable | None:
    """The kernel factory a feature map asks for (an expert stack's mixture), else ``None``."""
    return None if feature_map is None else getattr(feature_map, "data_kernel", None)


@dataclass(frozen=True)
class FitOptions:
    """How the GPs of a spec are fitted (see :func:`mfgp.fit.fit_gp`).

    Attributes:
        max_iter: L-BFGS iterations per start.
        restarts: extra seeded starts.
        max_fit_points: rows for the hyperparameters (``None``: all).
        seed: seeds subsets and restarts.
        progress: progress bars.
    """

    max_iter: int = 100
    restarts: int = 0
    max_fit_points: int | None = 1500
    seed: int = 0
    progress: bool = False

    def kwargs(self) -> dict:
        """The keyword arguments of the trainers."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FeatureMapSpec:
    """The map from raw composition features to a GP's inputs (:class:`FeatureMap`).

    Attributes:
        kind: ``"standardize"``, ``"extractor"`` (a :class:`~mfgp.nn.FeatureExtractor`) or
            ``"experts"`` (an :class:`~mfgp.experts.ExpertStack`).
        in_features: number of raw features.
        extractor: the extractor's or the stack's config, for ``"extractor"`` and
            ``"experts"``.
    """

    kind: str = "standardize"
    in_features: int = 0
    extractor: dict | None = None

    @classmethod
    def of(cls, fmap: FeatureMap) -> FeatureMapSpec:
        """The spec of an existing map."""
        if fmap.extractor is None:
            return cls("standardize", int(fmap.mean.shape[-1]))
        config = getattr(fmap.extractor, "config", None)
        if config is None:
            raise InputDataError(
                f"a feature map with a {type(fmap.extractor).__name__} cannot be described by a "
                "spec; use mfgp.nn.FeatureExtractor"
            )
        kind = "experts" if config.get("kind") == "experts" else "extractor"
        return cls(kind, int(config["in_dim"]), dict(config))

    def build(self, dtype: torch.dtype = torch.float64,
              device: torch.device | str | None = None) -> FeatureMap:  # fmt: skip
        """An unfitted map of this shape (its values come from a state dict)."""
        if self.kind == "standardize":
            z = torch.zeros(self.in_features, dtype=dtype, device=device)
            return FeatureMap(mean=z, std=torch.ones_like(z))
        if self.kind == "extractor":
            from mfgp.nn.extractor import FeatureExtractor

            c = self.extractor or {}
            fx = FeatureExtractor(int(c["in_dim"]), tuple(c["hidden"]), int(c["out_dim"]))
            fx.eval()
            fx.requires_grad_(False)
            return FeatureMap(extractor=fx.to(device))
        if self.kind == "experts":
            from mfgp.nn.experts import ExpertStack

            return FeatureMap(extractor=ExpertStack.from_config(self.extractor).to(device))
        raise UnknownSpecError(f"unknown feature map kind {self.kind!r}")

    def to_dict(self) -> dict:  # noqa: D102
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """Base class: an architecture, described by its options.

    Subclasses set ``name``, implement :meth:`_build` (the model in the mapped input space, or
    on raw inputs when ``raw_inputs``) and may override :meth:`fit`.
    """

    name: ClassVar[str] = ""
    #: whether :meth:`_build` takes raw inputs (else the estimator's map is put in front)
    raw_inputs: ClassVar[bool] = False

    def build(self, X: Tensor, Y: Tensor, Yvar: Tensor | None = None, *,
              feature_map: torch.nn.Module | None = None,
              observations: tuple[Tensor, Tensor] | None = None) -> Model:  # fmt: skip
        """The unfitted model on raw contract inputs ``X`` (``n x (d + 1)``).

        Args:
            X: raw contract inputs of the training rows, ``n x (d + 1)``.
            Y: ``n x 1`` observations.
            Yvar: ``n x 1`` known noise variances, or ``None``.
            feature_map: raw features -> GP inputs; ``None``: the GP sees ``X`` as is.
            observations: every known observation (``(X_obs, Y_obs)``, raw inputs), for specs
                that use them (the observed latents of the explicit-latent chain).

        Returns:
            A BoTorch ``Model`` whose ``posterior`` takes raw contract inputs, with the dtype
            and device of ``X``.
        """
        # GPyTorch initialises some parameters from torch's global generator (a task
        # covariance's factor): seeded here, so a build depends on the spec only
        with seeded_global_rng(getattr(self, "seed", 0), X.device):
            if self.raw_inputs:
                return self._build(X, Y, Yvar, feature_map=feature_map, observations=observations)
            with torch.no_grad():
                Z = X if feature_map is None else feature_map(X)
            model = self._build(Z, Y, Yvar, data_kernel=_data_kernel(feature_map))
        return model if feature_map is None else FeatureMapModel(model, feature_map)

    def _build(self, X, Y, Yvar, **kwargs) -> Model:
        raise NotImplementedError

    def trainer(self) -> Callable:
        """The trainer of this architecture's GPs (:func:`mfgp.fit.fit_gp` by default)."""
        from mfgp.fit import fit_gp

        return fit_gp

    def fit(self, model: Model, options: FitOptions | None = None) -> list:
        """Fit the model in place; one :class:`~mfgp.fit.FitReport` per fitted GP."""
        options = options or FitOptions()
        inner = model.model if isinstance(model, FeatureMapModel) else model
        return [self.trainer()(inner, **options.kwargs())]

    def to_dict(self) -> dict:
        """JSON-serializable: ``{"name": ..., **fields}``."""
        return {"name": self.name, **dataclasses.asdict(self)}


@register_spec
@dataclass(frozen=True)
class SingleSpec(ModelSpec):
    """The target fidelity alone (:class:`~mfgp.models.SingleFidelityGP`)."""

    name: ClassVar[str] = "single"

    def build(self, X, Y, Yvar=None, **kwargs) -> Model:  # noqa: D102
        top = X[:, -1] == X[:, -1].max()
        return super().build(X[top], Y[top], None if Yvar is None else Yvar[top], **kwargs)

    def _build(self, X, Y, Yvar, **kwargs) -> Model:
        return SingleFidelityGP(X, Y, Yvar, data_kernel=kwargs.get("data_kernel"))


#: ``(mean, sd)`` of the normal prior on each ``rho_t`` of a jointly fitted AR1 (standardised
#: outputs: levels of one property are about equally scaled)
JOINT_RHO_PRIOR = (1.0, 0.5)


def _fixed_prior(module: torch.nn.Module, name: str, prior, closure) -> None:
    """Register ``prior`` on ``module`` without saving it: a spec's constant, rebuilt on load.

    Its buffers are not persistent, so a model file has the same keys with or without it
    (files written before the prior existed still load, and the reverse).
    """
    module.register_prior(name, prior, closure)
    prior._non_persistent_buffers_set.update(prior._buffers)


def joint_priors(kernel: AR1Kernel, levels: Tensor) -> None:
    """The priors of a jointly fitted AR1, the counterparts of the recursive trainer's rules.

    * every ``rho_t``: ``N(1, 0.5^2)`` (:data:`JOINT_RHO_PRIOR`). The joint likelihood can
      trade ``rho_t`` for the discrepancy: on the augmented Hartmann-6 showcase's start (16
      points over three fidelities, development seed 104) it put ``rho_2`` at -0.06 and the
      target's posterior sd at 3% of the data's (NLPD 5,965 on the target; with the tutorial
      model's kernel prior ``rho_2`` = 0.02, the top discrepancy's variance 1e-30, NLPD
      14,320), a target level that is a constant, so a planner saw no value anywhere;
    * a sparse level (:func:`mfgp.fit.sparse_level`: fewer rows than its hyperparameters)
      whose data kernel has an output scale: the recursive trainer's ``Gamma(2, 2)`` prior on
      its discrepancy's variance, so it cannot vanish into the noise (a mixture-of-experts
      kernel, which has none, is left as it is, as the recursive trainer leaves it).

    Chosen on development seeds only (``benchmarks/diag_showcase_model.py``, seeds 100-109;
    ``benchmarks/diag_synthetic.py``, seeds 100-104).

    Args:
        kernel: the model's :class:`~mfgp.kernels.AR1Kernel`; the priors are registered on it
            and its data kernels, not saved with the model.
        levels: ``n`` fidelity indices of the training rows (the inputs' last column).
    """
    from gpytorch.priors import GammaPrior, NormalPrior

    from mfgp.fit.recursive import SPARSE_OUTPUTSCALE, sparse_level

    T = kernel.num_tasks
    if T < 2:
        return
    dev = {"dtype": kernel.rho.dtype, "device": kernel.rho.device}
    mean, sd = (torch.tensor(v, **dev) for v in JOINT_RHO_PRIOR)
    _fixed_prior(kernel, "joint_rho_prior", NormalPrior(mean, sd), lambda m: m.rho)
    for t in range(1, T):
        if getattr(kernel.data_kernels[t], "outputscale", None) is None:
            continue
        if sparse_level(kernel, t, int((levels == t).sum())):
            shape, rate = (torch.tensor(v, **dev) for v in SPARSE_OUTPUTSCALE)
            _fixed_prior(kernel.data_kernels[t], "sparse_outputscale_prior",
                         GammaPrior(shape, rate), lambda m: m.outputscale)  # fmt: skip


@register_spec
@dataclass(frozen=True)
class AR1Spec(ModelSpec):
    """The difference architecture (:class:`~mfgp.models.AR1GP`).

    Attributes:
        rho: ``"constant"`` or ``"linear"`` (``rho_t(x)``).
        training: ``"recursive"`` (level by level, :func:`mfgp.fit.fit_ar1_recursive`: more
            accurate and better calibrated on the band-gap benchmark, ``docs/models.md``),
            ``"joint"`` (:func:`mfgp.fit.fit_gp`) or ``"auto"`` (recursive). The recursive
            build has a constant mean per level (each level a regression on the one below,
            with an intercept); the joint one a single shared constant (see :class:`AR1GP`),
            a ``N(1, 0.5^2)`` prior on each ``rho_t`` and the recursive trainer's prior on a
            sparse level's discrepancy (:func:`joint_priors`).
        composition_effect: every level below the top gets a composition's own effect
            (:class:`~mfgp.kernels.effect.CompositionEffect`), carried up by ``rho``: the GP's
            inputs gain two composition-key columns (:class:`CompositionKeyedMap`). The
            recursive fit splits a level's residual variance between noise and effect in the
            step of the level above, fitted by its leave-one-out density
            (:func:`mfgp.fit.fit_ar1_recursive`).
    """

    name: ClassVar[str] = "ar1"
    rho: str = "constant"
    training: str = "auto"
    composition_effect: bool = False

    def __post_init__(self) -> None:
        if self.rho not in ("constant", "linear"):
            raise InputDataError(f"rho must be 'constant' or 'linear'; got {self.rho!r}")
        if self.training not in ("auto", "joint", "recursive"):
            raise InputDataError(
                f"training must be 'auto', 'joint' or 'recursive'; got {self.training!r}"
            )

    def build(self, X, Y, Yvar=None, *, feature_map=None, observations=None) -> Model:
        """See :meth:`ModelSpec.build`; with ``composition_effect`` the map appends the keys."""
        if self.composition_effect:
            feature_map = CompositionKeyedMap(feature_map)
        return super().build(X, Y, Yvar, feature_map=feature_map, observations=observations)

    def _build(self, X, Y, Yvar, **kwargs) -> Model:
        data_kernel = kwargs.get("data_kernel")
        if self.composition_effect:
            return self._build_with_effect(X, Y, Yvar, data_kernel)
        if self.training == "joint":
            model = AR1GP(X, Y, Yvar, rho=self.rho, data_kernel=data_kernel)
            joint_priors(model.covar_module, X[:, -1])
            return model
        # the recursive fit takes each level as a regression on the one below with its own
        # intercept (Le Gratiet and Garnier 2014): a constant per level. With one shared
        # constant fixed after level 0, a level that is the one below scaled about any other
        # point than the standardised origin needs its discrepancy GP to carry the offset,
        # which 5 points in 8 dimensions cannot (Borehole, benchmarks/bench_synthetic.py)
        T = int(X[:, -1].max().item()) + 1
        return AR1GP(X, Y, Yvar, rho=self.rho, mean_module=FidelityMean(T).to(X),
                     data_kernel=data_kernel)

    def _build_with_effect(self, X, Y, Yvar, data_kernel) -> Model:
        """The AR1 on ``[features, keys, fidelity]``: every level below the top has an effect.

        The data kernels and ``rho(x)`` read the features only; the min-max normalisation
        leaves the key columns as they are.
        """
        T = int(X[:, -1].max().item()) + 1
        d = X.shape[-1] - 1 - KEY_COLUMNS
        if d < 1:
            raise InputDataError(f"inputs with a composition key need features; got {X.shape}")
        make = data_kernel or default_data_kernel
        keys = range(d, d + KEY_COLUMNS)
        kernels = []
        for t in range(T):
            base = make(d, active_dims=range(d))
            kernels.append(base if t == T - 1 else
                           WithCompositionEffect(base, CompositionEffect(keys)))  # fmt: skip
        covar = AR1Kernel(kernels, rho_dims=d if self.rho == "linear" else None)
        mean = ConstantMean() if self.training == "joint" else FidelityMean(T)
        if self.training == "joint":
            joint_priors(covar, X[:, -1])
        return AR1GP(X, Y, Yvar, rho=self.rho, covar_module=covar, mean_module=mean.to(X),
                     input_transform=feature_normalize(X, n_features=d))  # fmt: skip

    def trainer(self) -> Callable:  # noqa: D102
        from mfgp.fit import fit_ar1_recursive, fit_gp

        return fit_gp if self.training == "joint" else fit_ar1_recursive


@register_spec
@dataclass(frozen=True)
class MultiTaskSpec(ModelSpec):
    """The multi-task architecture (:class:`~mfgp.models.MultiTaskGP`, LCM).

    Attributes:
        rank: rank of each task covariance.
        num_latents: latent processes.
    """

    name: ClassVar[str] = "multitask"
    rank: int = 1
    num_latents: int = 1

    def _build(self, X, Y, Yvar, **kwargs) -> Model:
        return MultiTaskGP(X, Y, Yvar, rank=self.rank, num_latents=self.num_latents,
                           data_kernel=kwargs.get("data_kernel"))


@register_spec
@dataclass(frozen=True)
class LatentChainSpec(ModelSpec):
    """The explicit-latent chain over ``T`` fidelities (:class:`~mfgp.models.ExplicitLatentGP`).

    Level 0 a single-fidelity GP, level ``t`` an explicit-latent GP on level ``t - 1``; each
    level's observed latents are every known observation of the level below (``observations``
    of :meth:`build`, typically all rows of the dataset, so a prediction uses the computed value
    of the composition it is asked about). :meth:`fit` fits bottom-up; each level's training
    latents follow the fitted level below (:meth:`ExplicitLatentGP.sync_latents`).

    Attributes:
        observed: use observed latents (``False``: the posterior of the level below everywhere).
        n_samples: latent draws per prediction.
        seed: seed of the latent base samples.
        linear: the linear term of ``k_rho``.
    """

    name: ClassVar[str] = "latent"
    raw_inputs: ClassVar[bool] = True
    observed: bool = True
    n_samples: int = 64
    seed: int = 0
    linear: bool = True

    def _build(self, X, Y, Yvar, *, feature_map=None, observations=None) -> Model:
        levels = X[:, -1].round().long()
        model: Model | None = None
        for t in range(int(levels.max()) + 1):
            rows = levels == t
            if not bool(rows.any()):
                raise InputDataError(f"the latent chain has no training rows at fidelity {t}")
            yv = None if Yvar is None else Yvar[rows]
            if model is None:
                with torch.no_grad():
                    Z = X[rows] if feature_map is None else feature_map(X[rows])
                gp = SingleFidelityGP(Z, Y[rows], yv, data_kernel=_data_kernel(feature_map))
                model = gp if feature_map is None else FeatureMapModel(gp, feature_map)
                continue
            obs = None
            if self.observed and observations is not None:
                X_obs, Y_obs = observations
                at = X_obs[:, -1].round().long() == t - 1
                obs = (X_obs[at], Y_obs[at]) if bool(at.any()) else None
            model = ExplicitLatentGP(X[rows], Y[rows], latent_model=model, latent_fidelity=t - 1,
                                     train_Yvar=yv, seed=self.seed, n_samples=self.n_samples,
                                     linear=self.linear, latent_observations=obs,
                                     feature_map=feature_map)  # fmt: skip
        assert model is not None
        return model

    def fit(self, model: Model, options: FitOptions | None = None) -> list:
        """Fit level 0 first, then each level above on the fitted one below."""
        options = options or FitOptions()
        chain = []
        level = model
        while isinstance(level, ExplicitLatentGP):
            chain.append(level)
            level = level.latent_model
        chain.append(level.model if isinstance(level, FeatureMapModel) else level)
        fit = functools.partial(self.trainer(), **options.kwargs())
        return [fit(part) for part in reversed(chain)]



@register_spec
@dataclass(frozen=True)
class ClassifierSpec(ModelSpec):
    """A sparse variational GP classifier (:class:`~mfgp.models.GPClassifier`), Adam on the ELBO.

    ``build`` takes 0/1 labels as ``Y`` (``Yvar`` must be ``None``); one task when the last
    column of ``X`` is constant, else the coregionalised multi-task classifier.

    Attributes:
        num_inducing: inducing points (a seeded, task-stratified subset of the rows).
        rank: task-covariance rank.
        epochs, batch_size, lr: Adam on the ELBO (:func:`mfgp.fit.fit_variational`).
        seed: seeds the inducing points.
    """

    name: ClassVar[str] = "classifier"
    num_inducing: int = 500
    rank: int = 1
    epochs: int = 30
    batch_size: int = 1024
    lr: float = 0.02
    seed: int = 0

    def _build(self, X, Y, Yvar, **kwargs) -> Model:
        if Yvar is not None:
            raise InputDataError("a classifier takes labels only: pass Yvar=None")
        return GPClassifier(X, Y, num_inducing=self.num_inducing, rank=self.rank, seed=self.seed)

    def fit(self, model: Model, options: FitOptions | None = None) -> list:
        """Adam on the ELBO; ``options`` gives the batch seed and the progress bar."""
        from mfgp.fit import fit_variational

        options = options or FitOptions(seed=self.seed)
        inner = model.model if isinstance(model, FeatureMapModel) else model
        return [fit_variational(inner, epochs=self.epochs, batch_size=self.batch_size,
                                lr=self.lr, seed=options.seed,
                                progress=options.progress)]  # fmt: skip
