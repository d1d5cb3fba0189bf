"""Soft-DTW and the soft valid prediction time (`train/losses.py`), and the loss choice of
`fit` / `TrainConfig` / `diffdyn train --loss`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd
from diffdyn.errors import DiffdynError
from diffdyn.metrics import valid_prediction_time
from diffdyn.train import TrainConfig
from diffdyn.train.fit import fit, forecast_loss, forecast_objective
from diffdyn.train.losses import (
    ForecastLoss,
    hard_valid_steps,
    soft_dtw,
    soft_dtw_divergence,
    soft_valid_steps,
    step_errors,
)
from test_cli import assert_one_line_error, run
from test_train import LinearStep  # noqa: F401  (registers "test-linear")


def dtw_numpy(x, y):
    """Textbook dynamic-time-warping cost with squared Euclidean distances."""
    n, m = len(x), len(y)
    r = np.full((n + 1, m + 1), np.inf)
    r[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = np.sum((x[i - 1] - y[j - 1]) ** 2)
            r[i, j] = cost + min(r[i - 1, j - 1], r[i - 1, j], r[i, j - 1])
    return r[n, m]


def soft_dtw_numpy(x, y, gamma):
    """Cuturi & Blondel 2017, Algorithm 1, as written (float64)."""
    n, m = len(x), len(y)
    r = np.full((n + 1, m + 1), np.inf)
    r[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            a = np.array([r[i - 1, j - 1], r[i - 1, j], r[i, j - 1]])
            smin = -gamma * np.log(np.sum(np.exp(-a / gamma)))
            r[i, j] = np.sum((x[i - 1] - y[j - 1]) ** 2) + smin
    return r[n, m]


def test_soft_dtw_matches_the_recursion_and_tends_to_dtw(x64):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(4, 2))
    for gamma in (1.0, 0.1):
        np.testing.assert_allclose(soft_dtw(x, y, gamma=gamma), soft_dtw_numpy(x, y, gamma),
                                   rtol=1e-10)  # fmt: skip
    np.testing.assert_allclose(soft_dtw(x, y, gamma=1e-4), dtw_numpy(x, y), atol=1e-2)
    # The soft minimum is below the minimum: soft-DTW ≤ DTW, approaching it as γ shrinks.
    values = [float(soft_dtw(x, y, gamma=g)) for g in (1.0, 0.1, 0.01)]
    assert values[0] < values[1] < values[2] <= dtw_numpy(x, y) + 1e-9


def test_soft_dtw_gradient_matches_finite_differences(x64):
    rng = np.random.default_rng(1)
    x, y = jnp.asarray(rng.normal(size=(5, 3))), jnp.asarray(rng.normal(size=(7, 3)))
    assert_gradient_matches_fd(lambda xy: soft_dtw(*xy, gamma=0.5), (x, y), rng, n=8)
    assert_gradient_matches_fd(
        lambda xy: soft_dtw_divergence(xy[0], xy[1][:5], gamma=0.3, used=3), (x, y), rng, n=8
    )


def test_soft_dtw_divergence_zero_at_equality_and_prefixes(x64):
    rng = np.random.default_rng(2)
    x, y = jnp.asarray(rng.normal(size=(6, 2))), jnp.asarray(rng.normal(size=(6, 2)))
    divergence = jax.jit(lambda a, b, u: soft_dtw_divergence(a, b, gamma=0.5, used=u))
    assert abs(float(divergence(x, x, 6))) < 1e-12
    assert float(divergence(x, y, 6)) > 0
    # `used` = u compares the first u steps only, as if the series were cut there.
    for u in (1, 4):
        np.testing.assert_allclose(
            divergence(x, y, u), soft_dtw_divergence(x[:u], y[:u], gamma=0.5), rtol=1e-10
        )


def test_soft_vpt_tends_to_the_hard_one():
    rng = np.random.default_rng(3)
    for _ in range(20):
        errors = np.cumsum(rng.uniform(0, 0.15, size=30)) + rng.uniform(-0.05, 0.05, size=30)
        errors = np.abs(errors)
        hard = int(hard_valid_steps(errors, 0.5))
        gaps = [abs(float(soft_valid_steps(errors, temperature=t)) - hard)
                for t in (0.1, 0.01, 1e-4)]  # fmt: skip
        assert gaps[-1] < 1e-3 and gaps[-1] <= gaps[0]
    # The hard count is the metric's VPT in steps (dt = 1, no Lyapunov exponent).
    truth = np.zeros((1, 30, 2))
    forecast = truth + np.linspace(0, 1.5, 30)[None, :, None]
    steps = hard_valid_steps(step_errors(forecast[0], truth[0]), 0.5)
    assert float(steps) == valid_prediction_time(forecast, truth, [1.0, 1.0], dt=1.0).mean
    assert float(soft_valid_steps(step_errors(forecast[0], truth[0]), temperature=1e-4)) == (
        pytest.approx(float(steps), abs=1e-3)
    )


def test_soft_vpt_gradient_matches_finite_differences(x64):
    rng = np.random.default_rng(4)
    f, t = jnp.asarray(rng.normal(size=(8, 2)) * 0.3), jnp.zeros((8, 2))

    def loss(f):
        return ForecastLoss("soft-vpt", soft_vpt_temperature=0.2)(f, t, 6)

    assert_gradient_matches_fd(loss, f, rng, n=8)
    used = soft_valid_steps(step_errors(f, t), temperature=0.2, used=6)
    np.testing.assert_allclose(loss(f), -used / 6)


def test_training_options_choose_the_loss():
    assert TrainConfig().loss == "mse" and forecast_objective(TrainConfig()) is None
    config = TrainConfig.from_options(loss="soft-vpt", soft_vpt_epsilon="0.4")
    assert forecast_objective(config) == ForecastLoss("soft-vpt", 0.1, 0.4, 0.1)
    with pytest.raises(DiffdynError, match="unknown loss 'soft-dwt'.*Did you mean 'soft-dtw'"):
        TrainConfig(loss="soft-dwt")
    with pytest.raises(DiffdynError, match="soft_dtw_gamma"):
        TrainConfig.from_options(soft_dtw_gamma="0")
    with pytest.raises(DiffdynError, match="soft_vpt_temperature"):
        TrainConfig.from_options(soft_vpt_temperature="-1")


def test_forecast_loss_with_each_objective(getkey):
    model = LinearStep(2, key=getkey())
    context = jax.random.normal(getkey(), (4, 3, 2))
    target = jax.random.normal(getkey(), (4, 5, 2))
    batch = (context, target, None, jnp.asarray(3.0))
    loss = jax.jit(forecast_loss, static_argnames=("rollout", "objective"))
    mse = loss(model, batch, getkey(), rollout=5)
    forecasts = jax.vmap(lambda c: model(c, horizon=5)[0])(context)
    np.testing.assert_allclose(mse, jnp.mean((forecasts - target)[:, :3] ** 2), rtol=1e-5)
    for name in ("soft-dtw", "soft-vpt"):
        objective = ForecastLoss(name)
        value = loss(model, batch, getkey(), rollout=5, objective=objective)
        expected = jnp.mean(jax.vmap(lambda f, t: objective(f, t, 3))(forecasts, target))
        np.testing.assert_allclose(value, expected, rtol=1e-5)


@pytest.mark.parametrize("loss", ["soft-dtw", "soft-vpt"])
def test_fit_trains_with_a_soft_loss(loss, getkey):
    t = np.arange(300) * 0.1
    values = np.stack([np.sin(t), np.cos(t)], axis=1).astype(np.float32)
    config = TrainConfig(context=4, horizon=8, epochs=3, batch_size=16, loss=loss,
                         strategy="free", patience=0)  # fmt: skip
    outcome = fit(LinearStep(2, key=getkey()), values, None, config, key=getkey(),
                  progress=False)  # fmt: skip
    losses = [record.loss for record in outcome.history]
    assert all(np.isfinite(losses)) and np.isfinite(outcome.best_val)
    assert outcome.failures == 0 and outcome.steps == 3 * int(np.ceil(outcome.steps / 3))


def test_cli_train_rejects_a_bad_loss(tmp_path):
    args = ["--system", "henon", "--steps", "400", "--model", "test-linear"]
    result = run("train", *args, "--loss", "soft-vtp", "-o", tmp_path / "m")
    assert_one_line_error(result, "unknown loss 'soft-vtp'", "soft-vpt")
    result = run("train", *args, "--loss", "soft-dtw", "--option", "soft_dtw_gamma=0",
                 "-o", tmp_path / "m")  # fmt: skip
    assert_one_line_error(result, "soft_dtw_gamma")
    assert list(tmp_path.iterdir()) == []


def test_cli_train_with_soft_vpt_records_the_loss(tmp_path):
    import json

    folder = tmp_path / "m"
    result = run("train", "--system", "henon", "--steps", "400", "--model", "test-linear",
                 "--loss", "soft-vpt", "--epochs", "2", "-o", folder)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    training = json.loads((folder / "model.json").read_text())["training"]
    assert training["loss"] == "soft-vpt" and training["soft_vpt_epsilon"] == 0.5
