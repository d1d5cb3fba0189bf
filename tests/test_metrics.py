import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from diffdyn.errors import DiffdynError
from diffdyn.metrics import mse, nrmse, rmse, smape, valid_prediction_time


def test_mse_rmse():
    assert mse([[1.0], [2.0]], [[1.0], [4.0]]) == 2.0
    assert rmse([[1.0], [2.0]], [[1.0], [4.0]]) == pytest.approx(math.sqrt(2))


def test_nrmse_normalises_each_variable_by_its_training_std():
    forecast = np.array([[2.0, 3.0]])
    truth = np.zeros((1, 2))
    # ((2/2)² + (3/1)²) / 2 = 5
    np.testing.assert_allclose(nrmse(forecast, truth, [2.0, 1.0]), [math.sqrt(5)])


def test_smape_is_on_the_0_to_200_scale():
    assert smape([[1.0]], [[3.0]]) == pytest.approx(100.0)
    assert smape([[1.0]], [[-1.0]]) == pytest.approx(200.0)
    assert smape([[0.0]], [[0.0]]) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=20))
def test_smape_bounds(values):
    a = np.asarray(values)[:, None]
    assert 0.0 <= smape(a, a[::-1]) <= 200.0
    assert smape(a, a) == 0.0


def test_valid_prediction_time_counts_steps_before_the_first_failure():
    truth = np.zeros((3, 10, 1))
    growth = np.linspace(0.1, 1.0, 10)  # NRMSE at steps 1..10
    forecast = truth.copy()
    forecast[0, :, 0] = growth  # crosses 0.5 at step 6 → 5 valid steps
    forecast[1, :, 0] = 2 * growth  # crosses at step 3 → 2 valid steps
    forecast[2, :, 0] = 0.0  # never crosses → whole horizon, censored
    vpt = valid_prediction_time(forecast, truth, [1.0], dt=0.1, threshold=0.5)
    np.testing.assert_allclose(vpt.per_start, [0.5, 0.2, 1.0])
    assert vpt.mean == pytest.approx(np.mean([0.5, 0.2, 1.0]))
    assert vpt.censored == 1 and vpt.unit == "time units"
    in_lyapunov = valid_prediction_time(forecast, truth, [1.0], dt=0.1, lyapunov_exponent=0.9)
    np.testing.assert_allclose(in_lyapunov.per_start, 0.9 * vpt.per_start)
    assert "Lyapunov times" in str(in_lyapunov) and "ε = 0.5" in str(in_lyapunov)


def test_nan_forecast_is_invalid_from_the_first_nan():
    truth = np.zeros((1, 4, 1))
    forecast = np.array([[[0.0], [0.0], [np.nan], [0.0]]])
    assert valid_prediction_time(forecast, truth, [1.0], dt=1.0).per_start[0] == 2.0


def test_bad_input():
    with pytest.raises(DiffdynError, match="same shape"):
        mse(np.zeros((2, 1)), np.zeros((3, 1)))
    with pytest.raises(DiffdynError, match="train_std"):
        nrmse(np.zeros((2, 2)), np.zeros((2, 2)), [1.0])
    with pytest.raises(DiffdynError, match="positive"):
        nrmse(np.zeros((2, 1)), np.zeros((2, 1)), [0.0])
    with pytest.raises(DiffdynError, match="λ₁ > 0"):
        valid_prediction_time(
            np.zeros((1, 2, 1)), np.zeros((1, 2, 1)), [1.0], 0.1, lyapunov_exponent=0.0
        )
