"""Lyapunov spectra of systems from their equations (Benettin et al. 1980, QR method)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from ..errors import DiffdynError
from ..systems.base import AbstractSystem


@dataclasses.dataclass(frozen=True)
class LyapunovSpectrum:
    """The result of `lyapunov_spectrum`.

    - `exponents`: the `k` largest Lyapunov exponents, per time unit, in decreasing order.
    - `convergence`: running estimates `[blocks, k]` after each of the recorded blocks, to
      judge whether the averaging time was long enough.
    - `convergence_times`: the averaging time at each row of `convergence`.
    - `settings`: what was used (duration, internal step, transient, renormalisation ...).
    """

    exponents: np.ndarray
    convergence: np.ndarray
    convergence_times: np.ndarray
    settings: dict[str, Any]

    @property
    def largest(self) -> float:
        """λ₁, the largest exponent."""
        return float(self.exponents[0])

    @property
    def lyapunov_time(self) -> float | None:
        """1/λ₁, or `None` when λ₁ ≤ 0 (no exponential divergence)."""
        return 1.0 / self.largest if self.largest > 0 else None

    @property
    def kaplan_yorke_dimension(self) -> float:
        """D_KY = j + Σ_{i≤j} λ_i / |λ_{j+1}| with j the largest index keeping the sum ≥ 0
        (Kaplan & Yorke 1979). Only meaningful when enough exponents were computed."""
        cumulative = np.cumsum(self.exponents)
        if cumulative[0] < 0:
            return 0.0
        j = int(np.max(np.nonzero(cumulative >= 0)[0])) + 1
        if j >= len(self.exponents):
            return float(j)
        return j + float(cumulative[j - 1]) / abs(float(self.exponents[j]))


def lyapunov_spectrum(
    system: AbstractSystem,
    *,
    n_exponents: int | None = None,
    duration: float | None = None,
    transient: float | None = None,
    dt: float | None = None,
    renormalise_every: int | None = None,
    y0: ArrayLike | None = None,
    key: PRNGKeyArray | None = None,
    record: int = 100,
) -> LyapunovSpectrum:
    """The `k` largest Lyapunov exponents of a system, from its equations.

    The tangent dynamics are the Jacobian of the system's internal step (RK4 for flows and
    delay systems, ETDRK4 for PDEs, the map itself for maps), applied to `k` orthonormal
    vectors with `jax.linearize`; every `renormalise_every` steps the vectors are
    re-orthonormalised by a QR decomposition and λ_i = (1/T) Σ log |R_ii| (Benettin, Galgani,
    Giorgilli & Strelcyn 1980; Shimada & Nagashima 1979).

    **Arguments:**

    - `system`: any `AbstractSystem`.
    - `n_exponents`: how many exponents (default: all when the internal state has at most 10
      components, else 1).
    - `duration`: averaging time in time units (default 1000 time units; 10⁵ iterations for
      maps).
    - `transient`: time to run before averaging (default: the system's `default_transient`).
    - `dt`: the sampling step whose internal step is used (default `system.dt`).
    - `renormalise_every`: internal steps between QR re-orthonormalisations (default 1 for
      maps, 10 otherwise). Contracting directions shrink by e^{λ_k·h·renormalise_every}
      between QRs; in float32 that factor must stay well above 1e-7.
    - `y0`: starting state (default `system.initial_state()`).
    - `key`: for randomly driven systems (NARMA-10).
    - `record`: number of running estimates kept in `convergence`.

    **Returns:** a `LyapunovSpectrum`.

    **Example:**

    ```python
    from diffdyn.analysis import lyapunov_spectrum
    from diffdyn.systems import get_system

    spectrum = lyapunov_spectrum(get_system("henon"))
    spectrum.largest  # ≈ 0.419
    ```
    """
    dt = float(system.dt if dt is None else dt)
    h = system.internal_step(dt)
    if duration is None:
        duration = 1e5 if system.kind == "map" else 1000.0
    transient = float(system.default_transient if transient is None else transient)
    if not duration > 0 or not math.isfinite(duration):
        raise DiffdynError(f"duration must be a positive time; got {duration}.")
    if renormalise_every is None:
        renormalise_every = 1 if system.kind == "map" else 10
    if renormalise_every < 1:
        raise DiffdynError(f"renormalise_every must be at least 1; got {renormalise_every}.")
    if system.needs_key and key is None:
        raise DiffdynError(
            f"{system.name} is driven by a random input: pass key=jax.random.key(seed)."
        )
    y0 = system.initial_state() if y0 is None else jnp.asarray(y0, dtype=jnp.result_type(float))
    state0 = system.prepare_state(y0, h)
    size = int(state0.shape[0])
    if n_exponents is None:
        n_exponents = size if size <= 10 else 1
    if not 1 <= n_exponents <= size:
        raise DiffdynError(f"n_exponents must be between 1 and {size}; got {n_exponents}.")

    n_transient = int(round(transient / h))
    blocks = max(1, int(round(duration / (h * renormalise_every))))
    record = max(1, min(record, blocks))
    blocks = (blocks // record) * record
    total_steps = n_transient + blocks * renormalise_every
    times = h * jnp.arange(total_steps, dtype=jnp.result_type(float))
    exog = system.exogenous(key, times)
    sums, running = _benettin(
        system, state0, exog, h, n_transient, blocks, renormalise_every, n_exponents, record
    )
    averaging_time = blocks * renormalise_every * h
    exponents = np.asarray(sums) / averaging_time
    block_time = renormalise_every * h * (blocks // record)
    convergence_times = block_time * np.arange(1, record + 1)
    convergence = np.asarray(running) / convergence_times[:, None]
    if not np.all(np.isfinite(exponents)):
        raise DiffdynError(
            f"the Lyapunov computation for {system.name} produced non-finite values; the "
            "trajectory may have blown up — check the parameters and initial state."
        )
    settings = {
        "method": "Benettin QR on the Jacobian of the internal step (jax.linearize)",
        "duration": averaging_time,
        "transient": n_transient * h,
        "internal_step": h,
        "renormalise_every": renormalise_every,
        "n_exponents": n_exponents,
        "dtype": str(jnp.result_type(float)),
    }
    return LyapunovSpectrum(exponents, convergence, convergence_times, settings)


@eqx.filter_jit
def _benettin(system, state0, exog, h, n_transient, blocks, every, k, record):
    stepper = system.make_stepper(h)
    dtype = state0.dtype

    def input_at(i):
        return None if exog is None else exog[i]

    def transient_body(i, state):
        return stepper(state, i * h, input_at(i))

    state = jax.lax.fori_loop(0, n_transient, transient_body, state0)
    basis = jnp.eye(state.shape[0], k, dtype=dtype)

    def tangent_step(i, carry):
        state, basis = carry
        state_next, push = jax.linearize(lambda s: stepper(s, i * h, input_at(i)), state)
        return state_next, jax.vmap(push, in_axes=1, out_axes=1)(basis)

    def block(carry, b):
        state, basis, sums = carry
        start = n_transient + b * every
        state, basis = jax.lax.fori_loop(start, start + every, tangent_step, (state, basis))
        basis, r = jnp.linalg.qr(basis)
        sums = sums + jnp.log(jnp.abs(jnp.diagonal(r)))
        return (state, basis, sums), None

    per_record = blocks // record

    def recorded(carry, j):
        carry, _ = jax.lax.scan(block, carry, j * per_record + jnp.arange(per_record))
        return carry, carry[2]

    init = (state, basis, jnp.zeros(k, dtype=dtype))
    (_, _, sums), running = jax.lax.scan(recorded, init, jnp.arange(record))
    return sums, running
