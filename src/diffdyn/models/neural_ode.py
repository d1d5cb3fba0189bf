"""Neural ODE forecaster: an MLP vector field integrated over the forecast horizon.

Chen, Rubanova, Bettencourt & Duvenaud 2018, "Neural ordinary differential equations" (NeurIPS):
the hidden state obeys dz/dt = f_θ(z, t) and a forecast is z(t₁) = z(t₀) + ∫ f_θ(z(s), s) ds,
computed by an ODE solver and differentiated through it. Here z starts at the last observed
state and is read out at the sampling times, so the model predicts, in the data's own time,
what the state does next; its closed loop is the ODE itself, run for as long as asked.

Augmented neural ODEs (Dupont, Doucet & Teh 2019, NeurIPS): z = y ⊕ a with extra
dimensions a, a(0) = 0, which lets trajectories that would have to cross in the data space pass
each other. A scalar delay system (Mackey–Glass) is such a case: from y alone an ODE cannot
tell rising from falling. So `lags > 0` starts a(0) at a learned linear function of the last
`lags` context samples (zero-initialised, so an untrained model starts as Dupont's).
"""

from __future__ import annotations

import math
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..systems.flow import rk4_step
from .base import AbstractForecaster
from .inputs import check_inputs
from .registry import ModelSpec, register_model

ADAPTIVE_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5}
SOLVERS = ("rk4", *ADAPTIVE_SOLVERS)


class NeuralODE(AbstractForecaster):
    """dz/dt = r · MLP(z ⊕ u(t)), z(0) = y_C ⊕ a(0); ŷ(t_C + k·dt) = the first d entries of
    z(k·dt), for k = 1 … horizon.

    The state z lives in the standardised space the training pipeline uses; time is in the
    data's units (`dt`, the sampling step). r = exp(`log_rate`) is a learned scalar that starts
    at 1/dt, so that at initialisation the MLP's O(1) output is a change per sampling step
    whatever the units of time; the vector field itself does not depend on `dt`.

    Exogenous inputs u are a known forcing: u(t) interpolates linearly between the samples
    u_C … u_{C+H} (rows C − 1 … C + H − 1 of `exog`, the last observed one first) and enters
    the vector field beside z. The adaptive solvers then step to every sampling time, where u
    has its kinks (`diffrax.ClipStepSizeController(step_ts=...)`), instead of across them.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `dt`: the sampling step of the data (time units); `build_model` passes the series' own.
    - `width`, `depth`: width and number of hidden layers of the MLP (tanh: a smooth field).
    - `augment`: number of extra state dimensions a (Dupont et al. 2019); 0 for none.
    - `lags`: how many context samples a(0) is read from (a learned linear map, zero at
      initialisation); 0 starts a at zero, as in Dupont et al.
    - `solver`: `"rk4"` — classical Runge–Kutta with `substeps` fixed steps per sampling step,
      a `lax.scan` differentiated step by step (`diffdyn.systems.rk4_step`); or `"tsit5"` /
      `"dopri5"` — Diffrax's adaptive solver with a PID step-size controller at `rtol`, `atol`,
      differentiated by `diffrax.RecursiveCheckpointAdjoint`, at most `max_steps` steps per
      sampling step (a solve that needs more returns non-finite values, which training skips
      and evaluation reports as a divergence).
    - `substeps`, `rtol`, `atol`, `max_steps`: the solver settings above.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import NeuralODE

    model = NeuralODE(3, key=jax.random.key(0), dt=0.01, width=32)
    forecast, aux = model(jnp.zeros((16, 3)), horizon=25)  # forecast: [25, 3]
    ```
    """

    name: ClassVar[str] = "neural-ode"
    vector_field: eqx.nn.MLP
    encoder: eqx.nn.Linear | None
    log_rate: Float[Array, ""]
    dt: float = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)
    augment: int = eqx.field(static=True)
    lags: int = eqx.field(static=True)
    solver: str = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key,
        dt: float = 1.0,
        width: int = 64,
        depth: int = 2,
        augment: int = 0,
        lags: int = 0,
        solver: str = "rk4",
        substeps: int = 1,
        rtol: float = 1e-3,
        atol: float = 1e-4,
        max_steps: int = 16,
    ):
        for option, value in (
            ("width", width), ("depth", depth), ("substeps", substeps), ("max_steps", max_steps)
        ):  # fmt: skip
            if value < 1:
                raise DiffdynError(f"{option} must be a positive whole number; got {value}.")
        if solver not in SOLVERS:
            raise UnknownNameError(
                f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}."
                f"{did_you_mean(solver, list(SOLVERS))}"
            )
        if not (math.isfinite(dt) and dt > 0):
            raise DiffdynError(f"the sampling step dt must be positive; got {dt}.")
        if solver != "rk4" and not (rtol > 0 and atol > 0):
            raise DiffdynError(
                f"rtol and atol must be positive for the adaptive solver {solver}; "
                f"got rtol={rtol}, atol={atol}."
            )
        if lags > 0 and augment == 0:
            raise DiffdynError(
                f"lags={lags} reads the augmented state from the context, but augment is 0: "
                "set augment to the number of extra dimensions, or lags to 0."
            )
        size = dim + augment
        self.vector_field = eqx.nn.MLP(
            size + exog_dim, size, width_size=width, depth=depth, activation=jnp.tanh,
            key=key,
        )  # fmt: skip
        if lags > 0:
            # Zero weights: only the shapes of a Linear are needed (no random draw to compile).
            shapes = eqx.filter_eval_shape(eqx.nn.Linear, lags * dim, augment, key=key)
            self.encoder = jax.tree_util.tree_map(
                lambda s: jnp.asarray(np.zeros(s.shape, s.dtype)), shapes
            )
        else:
            self.encoder = None
        self.log_rate = jnp.asarray(-math.log(dt), dtype=float)
        self.dt = float(dt)
        self.dim = dim
        self.exog_dim = exog_dim
        self.augment = augment
        self.lags = lags
        self.solver = solver
        self.substeps = substeps
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.max_steps = max_steps

    def initial_state(self, context: Float[Array, "context dim"]) -> Float[Array, " state"]:
        """z(0) = y_C ⊕ a(0): the last observed state and the augmented dimensions."""
        if self.augment == 0:
            return context[-1]
        if self.encoder is None:
            extra = jnp.zeros(self.augment, context.dtype)
        else:
            extra = self.encoder(context[-self.lags :].ravel())
        return jnp.concatenate([context[-1], extra])

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        n_context = context.shape[0]
        if n_context < self.lags:
            raise DiffdynError(
                f"the context ({n_context} steps) is shorter than the model's lags "
                f"({self.lags}): pass a context of at least {self.lags} steps."
            )
        times = self.dt * jnp.arange(horizon + 1, dtype=context.dtype)
        forcing = None
        if self.exog_dim:
            forcing = diffrax.LinearInterpolation(times, exog[n_context - 1 :])
        states = self._solve(self.initial_state(context), times, forcing)
        return states[:, : self.dim], {}

    def step(self, state: Float[Array, " state"]) -> Float[Array, " state"]:
        """z(t + dt) from z(t) = `state` (augmented dimensions included): the closed loop as
        a map s_{n+1} = F(s_n), for a model without exogenous inputs (`diffdyn.analysis`)."""
        return self._solve(state, self.dt * jnp.arange(2, dtype=state.dtype), None)[0]

    def _solve(self, z0, times, forcing) -> Float[Array, "horizon state"]:
        """z at `times[1:]`, starting from z0 at `times[0] = 0`, under the input `forcing`."""
        rate = jnp.exp(self.log_rate)

        def field(t, z):
            if forcing is not None:
                z = jnp.concatenate([z, forcing.evaluate(t)])
            return rate * self.vector_field(z)

        horizon = times.shape[0] - 1
        if self.solver == "rk4":
            h = self.dt / self.substeps

            def step(z, t):
                z = rk4_step(field, t, z, h)
                return z, z

            _, path = jax.lax.scan(
                step, z0, h * jnp.arange(horizon * self.substeps, dtype=z0.dtype)
            )
            return path[self.substeps - 1 :: self.substeps]
        controller = diffrax.PIDController(rtol=self.rtol, atol=self.atol)
        if forcing is not None:
            # u(t) has kinks at the samples: step to them rather than across them, where the
            # error estimate would reject steps and the step sizes would jump.
            controller = diffrax.ClipStepSizeController(controller, step_ts=times)
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, z, args: field(t, z)),
            ADAPTIVE_SOLVERS[self.solver](),
            t0=times[0],
            t1=times[-1],
            dt0=self.dt,
            y0=z0,
            saveat=diffrax.SaveAt(ts=times[1:]),
            stepsize_controller=controller,
            adjoint=diffrax.RecursiveCheckpointAdjoint(),
            max_steps=self.max_steps * horizon,
            throw=False,
        )
        # A failed solve (too many steps) leaves its unsaved rows at inf already; make a
        # failure anywhere non-finite everywhere, so it cannot pass for a forecast.
        states = solution.ys
        assert states is not None  # SaveAt(ts=...) saves
        return jnp.where(solution.result != diffrax.RESULTS.successful, jnp.nan, states)


# Measured in `compare`'s 20 s budget (experiments/neural_ode_solvers.py and the runs noted
# in its JSON): an augmented state read from 24 lags is what lets Mackey–Glass (τ = 17 samples)
# be forecast at all (VPT 0.02 → 1.0–1.6 Lyapunov times); a 40-step horizon keeps the closed
# loop on the attractor (10 steps: NRMSE grew to 20–100); batches of 16 at lr 3e-3 take enough
# steps in 20 s (batch 64: 0.5, batch 8: 0.6 Lyapunov times on Mackey–Glass).
register_model(
    ModelSpec(
        "neural-ode",
        NeuralODE,
        {
            "width": 64,
            "depth": 2,
            "augment": 4,
            "lags": 24,
            "solver": "rk4",
            "substeps": 1,
            "rtol": 1e-3,
            "atol": 1e-4,
            "max_steps": 16,
        },
        "neural ODE (Chen et al. 2018): an MLP vector field integrated from the last state, "
        "augmented (Dupont et al. 2019)",
        training={
            "context": 32,
            "horizon": 40,
            "strategy": "curriculum",
            "learning_rate": 3e-3,
            "batch_size": 16,
        },
    )
)
