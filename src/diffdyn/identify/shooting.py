"""Single and multiple shooting: the residuals of a system's trajectories against a series.

The series' `T` samples are cut into `K` segments of `L` sampling intervals (the last one
padded past the data, the padding masked). Segment `k` starts from its own free state `u_k`
(latent variables included) at time `t_{kL}` and is simulated for `L` intervals; with `K = 1`
this is single shooting. The objective (Bock & Plitt 1984, multiple shooting; as a penalty
rather than a constraint, e.g. van Domselaar & Hemker 1975) is

    S(θ, u) = (1/N) Σ_{k,j,v observed} ((y_v(t_{kL+j}; θ, u_k) − d_{kL+j,v}) / s_v)²
              + w · (1/N_c) Σ_{k<K−1, i} ((y_i(t_{(k+1)L}; θ, u_k) − u_{k+1,i}) / c_i)²

with `d` the data, `s_v` the standard deviation of observed variable `v` in the data, `N`
the number of observed values, `c_i` the scale of state variable `i` (the data's standard
deviation when observed, the start trajectory's when latent) and `w` the continuity weight.
`S` is a sum of squares of one residual vector (`Objective.residuals`), so Adam (through the
training core) and Levenberg–Marquardt minimise the same thing.

Flows are integrated by Diffrax: every segment in one ODE whose state is `[K, d]` (segment
`k`'s vector field evaluated at `t_{kL} + τ`), with one adaptive step for all of them
(each segment still meets the tolerances); gradients use the chosen adjoint. Maps, delay
systems and PDEs are stepped by their `make_stepper` in `lax.scan`, `jax.vmap`-ed over the
segments.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

import diffrax
import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, Bool, Float

from ..errors import DataError
from ..systems.base import AbstractSystem
from .transforms import Transform

ADJOINTS = ("recursive", "backsolve", "forward")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the segments lie in the series.

    - `count`: the number of segments `K`; `length`: sampling intervals per segment `L`.
    - `index`: `[K, L + 1]` sample indices (clipped to the series), `mask`: `[K, L + 1]`
      whether that point is a datum of that segment (each sample belongs to one segment; the
      last point of a segment other than the last is the next one's start, kept for
      continuity only; the padding past the data is masked).
    - `starts`: `[K]` the index of each segment's first sample.
    """

    count: int
    length: int
    index: np.ndarray
    mask: np.ndarray
    starts: np.ndarray


def segment_layout(samples: int, segments: int) -> Layout:
    """Cut `samples` samples into `segments` segments of equal length (the last one padded).

    **Raises** `DataError` when a segment would hold fewer than 3 samples.

    **Example:** `segment_layout(1001, 20).length  # 50`
    """
    if samples < 3 * segments:
        most = max(1, samples // 3)
        raise DataError(
            f"the series has {samples} samples: too few for {segments} segment(s) (each needs "
            f"at least 3); use at most {most} segment(s) or a longer series."
        )
    length = math.ceil((samples - 1) / segments)
    j = np.arange(length + 1)
    k = np.arange(segments)[:, None]
    index = k * length + j
    last = k == segments - 1
    mask = (index < samples) & ((j < length) | last)
    return Layout(segments, length, np.minimum(index, samples - 1), mask, k[:, 0] * length)


class Problem(eqx.Module):
    """The data of an identification, as arrays: the training core's batch (it returns itself,
    so its arrays are arguments of the compiled step, not constants).

    - `system`: the system; the fitted fields are replaced by the unknowns' values.
    - `transforms`: each fitted field's `Transform`.
    - `targets`: `[K, L + 1, n_obs]` the observed data, standardised (0 where masked).
    - `mask`: `[K, L + 1]`; `t_start`: `[K]` each segment's start time; `offsets`:
      `[L + 1]` the sampling times within a segment, from 0.
    - `obs_mean`, `obs_scale`: `[n_obs]` the data's mean and standard deviation.
    - `state_mean`, `state_scale`: `[d]` the same for every state variable (latent ones from
      the start trajectory): the free initial states are fitted standardised.
    """

    system: AbstractSystem
    transforms: dict[str, Transform]
    targets: Float[Array, "K L1 n_obs"]
    mask: Bool[Array, "K L1"]
    t_start: Float[Array, " K"]
    offsets: Float[Array, " L1"]
    obs_mean: Float[Array, " n_obs"]
    obs_scale: Float[Array, " n_obs"]
    state_mean: Float[Array, " d"]
    state_scale: Float[Array, " d"]

    def __call__(self, key, step, progress) -> Problem:
        return self


class Unknowns(eqx.Module):
    """What is fitted: each field's unconstrained value (`fields`; a network as it is) and the
    standardised initial state of every segment (`states`, `[K, d]`)."""

    fields: dict[str, Any]
    states: Float[Array, "K d"]


def _worst_rms(y):
    # The worst segment's RMS error: every segment meets the tolerance, as in a solve of its own.
    if isinstance(y, jax.Array) and y.ndim == 2:
        return jnp.max(jnp.sqrt(jnp.mean(jnp.abs(y) ** 2, axis=-1)))
    return optx.rms_norm(y)  # the backsolve adjoint's augmented state (a tuple)


class Objective(eqx.Module):
    """The residual vector and the loss `S = Σ residuals²` of a shooting problem (see the
    module's docstring). Every field is static, so two identifications of the same shapes and
    settings share one compiled training step.

    - `names`: the fitted fields; `observed`: the indices of the observed state variables.
    - `kind`: `"flow"` (Diffrax) or `"discrete"` (`make_stepper` in `lax.scan`).
    - `adjoint`: how reverse-mode gradients go through Diffrax: `"recursive"`
      (`RecursiveCheckpointAdjoint`), `"backsolve"` (`BacksolveAdjoint`), or `"forward"`
      (`ForwardMode`, for Jacobians by forward mode: Levenberg–Marquardt, standard errors).
    - `solver`, `rtol`, `atol`, `max_steps`: the flow's Diffrax settings.
    - `h`, `substeps`: the discrete kinds' internal step and internal steps per sample.
    - `continuity`: the weight `w`; `n_data`, `n_continuity`: `N` and `N_c`.
    - `driven`: the flow is driven by a recorded input (`AbstractControlledFlow.driven_by`),
      whose kinks at the sample times the solver steps onto.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    observed: tuple[int, ...] = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    adjoint: str = eqx.field(static=True)
    solver: Any = eqx.field(static=True)
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    h: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    continuity: float = eqx.field(static=True)
    driven: bool = eqx.field(static=True, default=False, kw_only=True)
    n_data: int = eqx.field(static=True)
    n_continuity: int = eqx.field(static=True)

    # -- the model ------------------------------------------------------------------------
    def system(self, unknowns: Unknowns, problem: Problem) -> AbstractSystem:
        """The system with the fitted fields set from the unknowns."""
        values = [problem.transforms[n].forward(unknowns.fields[n]) for n in self.names]
        return with_fields(problem.system, self.names, values)

    def states(self, unknowns: Unknowns, problem: Problem) -> Float[Array, "K d"]:
        """Each segment's initial state in the variables' own units."""
        return problem.state_mean[None] + problem.state_scale[None] * unknowns.states

    def trajectories(
        self,
        system: AbstractSystem,
        states: Float[Array, "K d"],
        t_start: Float[Array, " K"],
        offsets: Float[Array, " L1"],
    ) -> Float[Array, "K L1 d"]:
        """Every segment simulated from its initial state at `t_start + offsets` (non-finite
        where a solve failed)."""
        if self.kind == "flow":
            return self._flow(system, states, t_start, offsets)
        return self._discrete(system, states, t_start, offsets)

    def _flow(self, system, states, t_start, offsets):
        def field(tau, y, args):
            # The system and start times come in as `args`, not closed over: BacksolveAdjoint
            # differentiates only with respect to what is passed.
            system, t_start = args
            return jax.vmap(lambda t0, u: system.vector_field(t0 + tau, u))(t_start, y)

        adjoint = {
            "recursive": diffrax.RecursiveCheckpointAdjoint(),
            "backsolve": diffrax.BacksolveAdjoint(),
            "forward": diffrax.ForwardMode(),
        }[self.adjoint]
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(field),
            self.solver,
            t0=offsets[0],
            t1=offsets[-1],
            dt0=None,
            y0=states,
            args=(system, t_start),
            saveat=diffrax.SaveAt(ts=offsets),
            stepsize_controller=self._controller(offsets),
            adjoint=adjoint,
            max_steps=self.max_steps,
            throw=False,
        )
        assert solution.ys is not None
        ys = jnp.swapaxes(solution.ys, 0, 1)
        # A failed solve (max_steps reached, a step size underflow) gives no trajectory at all.
        return jnp.where(solution.result == diffrax.RESULTS.successful, ys, jnp.inf)

    def _controller(self, offsets):
        controller = diffrax.PIDController(rtol=self.rtol, atol=self.atol, norm=_worst_rms)
        if not self.driven:
            return controller
        # A recorded input is linear between samples: its kinks at the sample times (the same
        # offsets in every segment, which starts at a sample) are stepped onto, not across, so
        # the solution — and the loss — stays smooth in the unknowns.
        return diffrax.ClipStepSizeController(controller, step_ts=offsets)

    def _discrete(self, system, states, t_start, offsets):
        stepper = system.make_stepper(self.h)

        def segment(y0, t0):
            def sample(state, offset):
                t = t0 + offset

                def substep(i, s):
                    return stepper(s, t + i * self.h, None)

                observed = system.observe(state)
                return jax.lax.fori_loop(0, self.substeps, substep, state), observed

            _, ys = jax.lax.scan(sample, system.prepare_state(y0, self.h), offsets)
            return ys

        return jax.vmap(segment)(states, t_start)

    # -- the objective --------------------------------------------------------------------
    def residuals_of(
        self, ys: Float[Array, "K L1 d"], states: Float[Array, "K d"], problem: Problem
    ) -> Float[Array, " m"]:
        """The residual vector from the segments' trajectories and initial states (affine in
        both)."""
        observed = ys[..., jnp.asarray(self.observed)]
        model = (observed - problem.obs_mean[None, None]) / problem.obs_scale[None, None]
        misfit = jnp.where(problem.mask[..., None], model - problem.targets, 0.0)
        parts = [misfit.reshape(-1) / math.sqrt(self.n_data)]
        if states.shape[0] > 1:
            gaps = (ys[:-1, -1, :] - states[1:]) / problem.state_scale[None]
            parts.append(gaps.reshape(-1) * math.sqrt(self.continuity / self.n_continuity))
        return jnp.concatenate(parts)

    def residuals_at(
        self, system: AbstractSystem, states: Float[Array, "K d"], problem: Problem
    ) -> Float[Array, " m"]:
        """The residual vector for a system and initial states given in their own units."""
        ys = self.trajectories(system, states, problem.t_start, problem.offsets)
        return self.residuals_of(ys, states, problem)

    def residuals(self, unknowns: Unknowns, problem: Problem) -> Float[Array, " m"]:
        """The residual vector of the unknowns."""
        return self.residuals_at(
            self.system(unknowns, problem), self.states(unknowns, problem), problem
        )

    def __call__(self, unknowns: Unknowns, problem: Problem, key=None) -> Float[Array, ""]:
        """The loss `S`: the training core's `loss(module, batch, key)`."""
        r = self.residuals(unknowns, problem)
        return jnp.sum(r * r)

    def split(self, r: Float[Array, " m"]) -> tuple[Array, Array]:
        """The data part and the continuity part of a residual vector."""
        n = r.shape[0] - self.n_continuity
        return r[:n], r[n:]


class Flat(eqx.Module):
    """The unknowns as one vector `x = [fitted values (unconstrained), states (standardised,
    row by row)]`, for Levenberg–Marquardt and the Jacobian: `unknowns(x)` rebuilds them."""

    static: Any
    unravel: Any = eqx.field(static=True)
    n_values: int = eqx.field(static=True)
    shape: tuple[int, int] = eqx.field(static=True)

    @classmethod
    def of(cls, unknowns: Unknowns) -> tuple[Flat, Float[Array, " p"]]:
        params, static = eqx.partition(unknowns.fields, eqx.is_inexact_array)
        values, unravel = jax.flatten_util.ravel_pytree(params)
        x = jnp.concatenate([values, unknowns.states.reshape(-1)])
        shape = cast(tuple[int, int], tuple(unknowns.states.shape))  # `states` is `[K, d]`
        return cls(static, unravel, int(values.shape[0]), shape), x

    def unknowns(self, x: Float[Array, " p"]) -> Unknowns:
        fields = eqx.combine(self.unravel(x[: self.n_values]), self.static)
        return Unknowns(fields, x[self.n_values :].reshape(self.shape))


@eqx.filter_custom_jvp
def structured_residuals(x, *, objective: Objective, problem: Problem, flat: Flat):
    """`objective.residuals` of the flat unknowns `x`, with a forward-mode rule that uses the
    structure of multiple shooting.

    Segment `k`'s trajectory depends on the fitted values θ and on its own initial state
    `u_k` only, so its Jacobian is block sparse and `n_θ + d` Jacobian–vector products give
    all of it (Curtis, Powell & Reid 1974): one per value, and one per state component `i`
    perturbing `u_{k,i}` of every segment at once. Any Jacobian–vector product (Levenberg–
    Marquardt's, `jax.jacfwd`'s `p` of them) is then a contraction with those, instead of `p`
    solves of the tangent equations. The segments of a flow share their adaptive steps, which
    couples them only through the step sizes, at the level of the solver's tolerance.
    """
    return objective.residuals(flat.unknowns(x), problem)


@structured_residuals.def_jvp
def _structured_jvp(primals, tangents, *, objective: Objective, problem: Problem, flat: Flat):
    (x,), (tx,) = primals, tangents
    n, (k, d) = flat.n_values, flat.shape

    def trajectories(values, states):
        unknowns = flat.unknowns(jnp.concatenate([values, states.reshape(-1)]))
        system = objective.system(unknowns, problem)
        natural = objective.states(unknowns, problem)
        return objective.trajectories(system, natural, problem.t_start, problem.offsets)

    values, states = x[:n], x[n:].reshape(k, d)
    value_directions = jnp.concatenate([jnp.eye(n, dtype=x.dtype), jnp.zeros((d, n), x.dtype)])
    state_directions = jnp.concatenate(
        [
            jnp.zeros((n, k, d), x.dtype),
            jnp.broadcast_to(jnp.eye(d, dtype=x.dtype)[:, None], (d, k, d)),
        ]
    )
    ys, dys = jax.vmap(
        lambda a, b: jax.jvp(trajectories, (values, states), (a, b)), out_axes=(None, 0)
    )(value_directions, state_directions)
    natural = problem.state_mean[None] + problem.state_scale[None] * states
    primal = objective.residuals_of(ys, natural, problem)
    if tx is None:
        return primal, jnp.zeros_like(primal)
    t_values, t_states = tx[:n], tx[n:].reshape(k, d)
    t_ys = jnp.einsum("t,tkjd->kjd", t_values, dys[:n]) + jnp.einsum(
        "ki,ikjd->kjd", t_states, dys[n:]
    )
    _, t_out = jax.jvp(
        lambda a, b: objective.residuals_of(a, b, problem),
        (ys, natural),
        (t_ys, problem.state_scale[None] * t_states),
    )
    return primal, t_out


def with_fields(system: AbstractSystem, names: tuple[str, ...], values: list[Any]) -> Any:
    """`system` with the fields `names` replaced by `values`."""
    if not names:
        return system
    return eqx.tree_at(lambda s: [getattr(s, n) for n in names], system, list(values))
