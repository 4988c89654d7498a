"""Each from-scratch optimizer follows its ``torch.optim`` counterpart step for step, in float64.

Both start from the same parameters and receive the same gradients for 25 steps; the gradients depend on the
current parameters (a noisy quadratic), so a wrong step would also change every later gradient. Parameters
must agree to 1e-10 relative, 1e-12 absolute, after every step. A large ``eps`` in some cases makes where
``eps`` is added (inside or outside the square root, before or after bias correction) visible at that
tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_models.scratch import SGD, Adadelta, AdaGrad, Adam, Momentum, Nesterov, RMSProp

STEPS = 25
RTOL, ATOL = 1e-10, 1e-12

PAIRS = [
    pytest.param(lambda: SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1), id="sgd"),
    pytest.param(lambda: Momentum(lr=0.05, momentum=0.8),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8), id="momentum"),
    pytest.param(lambda: Nesterov(lr=0.05, momentum=0.8),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True), id="nesterov"),
    pytest.param(lambda: AdaGrad(lr=0.2), lambda p: torch.optim.Adagrad(p, lr=0.2), id="adagrad"),
    pytest.param(lambda: AdaGrad(lr=0.2, eps=0.5),
                 lambda p: torch.optim.Adagrad(p, lr=0.2, eps=0.5), id="adagrad-large-eps"),
    pytest.param(lambda: RMSProp(lr=0.01, alpha=0.9),
                 lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9), id="rmsprop"),
    pytest.param(lambda: RMSProp(lr=0.01, alpha=0.9, eps=0.5),
                 lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.5), id="rmsprop-large-eps"),
    pytest.param(lambda: Adadelta(), lambda p: torch.optim.Adadelta(p, lr=1.0), id="adadelta"),
    pytest.param(lambda: Adadelta(lr=0.5, rho=0.8, eps=0.1),
                 lambda p: torch.optim.Adadelta(p, lr=0.5, rho=0.8, eps=0.1), id="adadelta-large-eps"),
    pytest.param(lambda: Adam(lr=0.05, beta1=0.8, beta2=0.95),
                 lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.95)), id="adam"),
    pytest.param(lambda: Adam(lr=0.05, beta1=0.8, beta2=0.95, eps=0.5),
                 lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.95), eps=0.5), id="adam-large-eps"),
]


def _gradients(params: dict[str, np.ndarray], step: int) -> dict[str, np.ndarray]:
    """The gradient of a quadratic with a different curvature per entry, plus seeded noise for this step."""
    rng = np.random.default_rng(step)
    return {
        key: np.linspace(0.5, 3.0, value.size).reshape(value.shape) * value + 0.3 * rng.standard_normal(value.shape)
        for key, value in params.items()
    }


@pytest.mark.parametrize("make_scratch, make_torch", PAIRS)
def test_scratch_optimizer_matches_torch_step_for_step(make_scratch, make_torch):
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    start = {key: value.copy() for key, value in params.items()}
    arrays = dict(params)  # the optimizer must update these very arrays, in place
    torch_params = {key: torch.tensor(value, requires_grad=True) for key, value in params.items()}
    scratch, reference = make_scratch(), make_torch(list(torch_params.values()))

    for step in range(STEPS):
        grads = _gradients(params, step)
        scratch.update(params, grads)
        for key, param in torch_params.items():
            param.grad = torch.from_numpy(grads[key])
        reference.step()
        for key, param in torch_params.items():
            np.testing.assert_allclose(params[key], param.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{key} after step {step + 1}")

    for key in params:
        assert params[key] is arrays[key]
        assert np.abs(params[key] - start[key]).max() > 1e-2  # the parameters really moved


@pytest.mark.parametrize(
    "scratch, reference",
    [
        (AdaGrad(), torch.optim.Adagrad),
        (RMSProp(), torch.optim.RMSprop),
        (Adadelta(), torch.optim.Adadelta),
        (Adam(), torch.optim.Adam),
    ],
    ids=["adagrad", "rmsprop", "adadelta", "adam"],
)
def test_defaults_are_torch_defaults(scratch, reference):
    defaults = reference([torch.zeros(1, requires_grad=True)]).defaults
    assert scratch.lr == defaults["lr"]
    assert scratch.eps == defaults["eps"]
    for name in ("alpha", "rho"):
        if hasattr(scratch, name):
            assert getattr(scratch, name) == defaults[name]
    if isinstance(scratch, Adam):
        assert (scratch.beta1, scratch.beta2) == defaults["betas"]
