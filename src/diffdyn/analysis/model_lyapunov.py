"""Lyapunov spectra of trained models: the closed loop as a map, through `lyapunov_spectrum`."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import DiffdynError
from ..models.base import AbstractForecaster
from ..systems.map import AbstractMap
from .closed_loop import AbstractClosedLoop, closed_loop
from .lyapunov import LyapunovSpectrum, lyapunov_spectrum

DEFAULT_ITERATIONS = 20_000  # averaging length, in applications of the map, when not given


class ClosedLoopMap(AbstractMap):
    """A model's closed loop seen as a map system, so that `lyapunov_spectrum` (Benettin's
    QR method on `jax.linearize` of the step) runs on it unchanged."""

    name: ClassVar[str] = "the model's closed loop"
    loop: AbstractClosedLoop

    def step(self, state, exog):
        return self.loop.step(state)


def model_lyapunov_spectrum(
    model: AbstractForecaster,
    context: Float[Array, "context dim"],
    *,
    dt: float,
    n_exponents: int | None = None,
    duration: float | None = None,
    transient: float | None = None,
    name: str | None = None,
) -> LyapunovSpectrum:
    """The `k` largest Lyapunov exponents of a model run closed loop, per unit of the data's
    time.

    The closed loop is the autonomous map of `closed_loop` (window, hidden state, or both;
    checked to reproduce the model's forecast), started from the state after `context`.
    Benettin's QR method (`lyapunov_spectrum`, Benettin et al. 1980) runs on its Jacobian,
    re-orthonormalising after every application; the exponents per application are divided by
    the time one application covers (`steps · dt`). Lyapunov exponents do not change under an
    affine change of coordinates, so the model's standardised space gives those of the data.

    **Arguments:**

    - `model`: a forecaster without exogenous inputs.
    - `context`: `[C, d]`, in the model's units (standardised, as the training pipeline feeds it).
    - `dt`: the data's sampling step (time units per forecast step).
    - `n_exponents`: how many (default: d + 1, at most the state's size).
    - `duration`: averaging time in the data's time units (default: `DEFAULT_ITERATIONS`
      applications of the map).
    - `transient`: time run before averaging (default: a tenth of `duration`), so the state
      settles on the model's attractor.
    - `name`: the model's name, for messages.

    **Returns:** a `LyapunovSpectrum` in the data's time units; `settings` adds `state` (what
    the state is), `state_size` and `time_per_iteration`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.analysis import model_lyapunov_spectrum
    from diffdyn.models import build_model

    model = build_model("tdnn", 3, key=jax.random.key(0), delays=2, width=8)
    spectrum = model_lyapunov_spectrum(model, jnp.ones((8, 3)), dt=0.01, duration=20.0)
    spectrum.exponents  # 4 exponents per time unit
    ```
    """
    if not (math.isfinite(dt) and dt > 0):
        raise DiffdynError(f"the sampling step dt must be positive; got {dt}.")
    loop, state = closed_loop(model, context, name=name)
    per_iteration = loop.steps * dt
    iterations = DEFAULT_ITERATIONS if duration is None else round(duration / per_iteration)
    if iterations < 1:
        raise DiffdynError(
            f"the averaging time {duration} is shorter than one step of the closed loop "
            f"({per_iteration:g} time units); give a longer duration."
        )
    settle = iterations // 10 if transient is None else round(transient / per_iteration)
    size = int(state.shape[0])
    k = min(size, int(context.shape[-1]) + 1) if n_exponents is None else n_exponents
    if not 1 <= k <= size:
        raise DiffdynError(
            f"n_exponents must be between 1 and the closed loop's state size {size}; got {k}."
        )
    try:
        spectrum = lyapunov_spectrum(
            ClosedLoopMap(loop),
            n_exponents=k,
            duration=float(iterations),
            transient=float(settle),
            y0=state,
            renormalise_every=1,
        )
    except DiffdynError:
        raise DiffdynError(
            f"the Lyapunov exponents of {name or 'the model'}'s closed loop are not finite: it "
            "diverges (it has no attractor to measure) or its map annihilates some direction "
            "(ask for fewer exponents)."
        ) from None
    settings = {
        **spectrum.settings,
        "method": "Benettin QR on jax.linearize of the closed-loop map",
        "state": loop.describe,
        "state_size": size,
        "time_per_iteration": per_iteration,
        "duration": spectrum.settings["duration"] * per_iteration,
        "transient": spectrum.settings["transient"] * per_iteration,
        "iterations": int(spectrum.settings["duration"]),
        "dtype": str(jnp.result_type(float)),
    }
    del settings["internal_step"], settings["renormalise_every"]
    return dataclasses.replace(
        spectrum,
        exponents=spectrum.exponents / per_iteration,
        convergence=spectrum.convergence / per_iteration,
        convergence_times=spectrum.convergence_times * per_iteration,
        settings=settings,
    )
