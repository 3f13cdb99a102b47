"""The jointly fitted AR1's priors (``mfgp.models.specs.joint_priors``)."""

import torch
from botorch.test_functions.multi_fidelity import AugmentedHartmann

from mfgp.models.specs import AR1Spec, FitOptions

TK = {"dtype": torch.float64}


def _hartmann_start(seed: int):
    """BoTorch's multi-fidelity tutorial start: 16 points at fidelities 0.5 / 0.75 / 1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(16, 6, generator=g, **TK)
    s = torch.tensor((0.5, 0.75, 1.0), **TK)[torch.randint(3, (16, 1), generator=g)]
    Y = AugmentedHartmann(negate=True).to(**TK)(torch.cat([x, s], 1)).unsqueeze(-1)
    return torch.cat([x, (4 * s - 2).round()], 1), Y  # fidelity index 0, 1, 2


def test_joint_ar1_keeps_the_target_uncertain_from_a_scarce_start():
    # development seed 104 of the showcase: without the priors the joint likelihood put
    # rho_2 at -0.06, so the target level was a constant with a posterior sd of 3% of the
    # data's (0.005, NLPD 5,965 on the target), and a planner saw no value anywhere
    X, Y = _hartmann_start(104)
    spec = AR1Spec(training="joint")
    model = spec.build(X, Y)
    spec.fit(model, FitOptions())
    assert float(model.covar_module.rho.detach()[-1]) > 0.3
    test = torch.cat([torch.rand(200, 6, generator=torch.Generator().manual_seed(1), **TK),
                      torch.full((200, 1), 2.0, **TK)], 1)  # fmt: skip
    with torch.no_grad():
        sd = model.posterior(test).variance.sqrt().median()
    assert sd > 0.25 * Y.std()


def test_joint_priors_are_not_saved_with_the_model():
    # a model file has the same keys with or without them: older files still load
    X, Y = _hartmann_start(0)
    joint = AR1Spec(training="joint").build(X, Y)
    names = [name for name, *_ in joint.named_priors()]
    assert "covar_module.joint_rho_prior" in names
    assert any(n.endswith("sparse_outputscale_prior") for n in names)  # 5 rows a level
    assert not any("joint_rho_prior" in k or "sparse_outputscale" in k
                   for k in joint.state_dict())  # fmt: skip
    other = AR1Spec(training="joint").build(X, Y)
    other.load_state_dict(joint.state_dict())  # strict: the same keys
    # and across the change: a model built without the priors (a file written before them)
    import mfgp.models.specs as specs

    real = specs.joint_priors
    specs.joint_priors = lambda *args: None
    try:
        before = AR1Spec(training="joint").build(X, Y)
    finally:
        specs.joint_priors = real
    assert not [name for name, *_ in before.named_priors() if "joint_rho" in name]
    joint.load_state_dict(before.state_dict())
    before.load_state_dict(joint.state_dict())
