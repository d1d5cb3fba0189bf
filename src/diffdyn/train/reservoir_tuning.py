"""Gradient-tuned reservoirs: ESN and NG-RC hyperparameters tuned through the ridge readout.

A reservoir's readout is a ridge solve, so its held-out closed-loop forecast error is a
differentiable function of the hyperparameters that shape the features (the ESN's spectral
radius, leak, input and bias scalings; NG-RC's feature scaling) and of the ridge α itself:
the reservoir run is differentiated by reverse mode, the solve implicitly through its normal
equations (`nn.ridge.ridge_regression`). `tune_reservoir` minimises that error with Adam
**through the one training core** (`train`): the module is the hyperparameters in
unconstrained coordinates (`ReservoirHyperparameters`), the loss a multi-step validation error,
the batch the training series (full batch: the loss is deterministic).

The loss (`tuning_loss`) scores blocked cross-validated closed-loop forecasts
(`nn.ridge.cross_validated_forecasts`, 3 folds): up to 64 start rows spread over the training
series' regression rows, each fold forecast for at most 100 steps (a quarter of the rows) by
the readout fitted without its forecast windows, teacher-forced up to the start and free
running after it (or, given a validation series that continues the training series, up to 64
windows of it forecast by the readout fitted on all the training rows:
`nn.ridge.held_out_forecasts`); every step's squared NRMSE e² enters as e² / (1 + e²). The
tuning runs in float64. Chaotic rollouts make
gradients grow like exp(λ₁ t): the rollouts are kept short, the saturation makes a diverging
forecast contribute a bounded loss with a vanishing gradient instead of an exploding one, the
validation closed loops clip the fed-back state far outside the data
(`nn.ridge.closed_loop_bound`), the global gradient norm is clipped at 1 and the core skips any
non-finite step. The loss is not convex in the scales, so the gradient starts from the best of
a few scaled copies of the model's values (`START_FACTORS`). The reservoir matrices stay the
fixed random draw; only their scales change.

Bergstra & Bengio 2012 (random search) is the baseline `bench/reservoir_tuning.py` compares
with; gradient-based hyperparameter optimisation through a closed-form inner solve follows
Bengio 2000 ("Gradient-based optimization of hyperparameters"), with the implicit derivative
of the normal equations.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError
from ..models.esn_ensemble import ESNEnsemble
from ..models.reservoir import AbstractReservoir
from ..nn.ridge import RIDGE_CANDIDATES, cross_validated_forecasts, held_out_forecasts
from .loop import TrainingError, train

TUNING_STEPS = 50
FOLDS = 3
TUNING_LEARNING_RATE = 0.1
TUNING_CLIP = 1.0
VALIDATE_EVERY = 5
# the share of a training budget the tuning may spend (the final fit and its compilation
# take the rest)
BUDGET_SHARE = 0.75
AUTO_MIN_BUDGET = 120.0
# a short series is tuned under a budget too, from this budget up: its tuning is cheap (a
# 1000-row univariate dysts series, 500 units: 7.6 s of a 10-s budget) and it paid there
AUTO_MAX_ROWS = 1000
AUTO_SHORT_MIN_BUDGET = 10.0
# a logit is infinite at leak = 1 (the ESN's default): tuning starts just below
LEAK_START_MAX = 0.99
RIDGE_FLOOR = 1e-14
# the models that `tune="auto"` tunes (where it paid: `tunes_by_default`)
AUTO_TUNED = ("esn", "esn-ensemble")
# what `fit_reservoir` takes: a reservoir, or an ensemble tuned through one of its members
TUNABLE = (AbstractReservoir, ESNEnsemble)
Tunable = AbstractReservoir | ESNEnsemble
# the starting points tried before the gradient steps: every scale (not the leak) of the
# model's values times each factor, α times its square (the features scale with the inputs,
# and α multiplies their squares)
START_FACTORS = (1.0, 1 / 3, 1 / 9, 3.0)
# and space-filling starting points over these ranges (also the ranges that
# bench/reservoir_tuning.py's random search draws from): (scale, low, high)
START_POINTS = 16
TUNING_RANGES = {
    "spectral_radius": ("log", 0.05, 2.0),
    "leak": ("linear", 0.05, 1.0),
    "input_scaling": ("log", 0.01, 2.0),
    "bias_scaling": ("log", 0.01, 2.0),
    "ridge": ("log", 1e-12, 1.0),
    "feature_scaling": ("log", 0.1, 10.0),
}


def _as_float64(tree):
    """`tree` with its floating arrays in float64 (call under `jax.enable_x64(True)`)."""
    return jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, tree
    )


def start_points(names: list[str], count: int | None = None) -> list[dict[str, float]]:
    """`count` (default `START_POINTS` = 16) space-filling points of `TUNING_RANGES` for the
    hyperparameters `names`: a scrambled Sobol sequence (seed 0, so the same points every
    time; Owen 1998), mapped linearly to the leak's range and log-linearly to the others."""
    from scipy.stats import qmc  # here: scipy.stats takes a while to import

    count = START_POINTS if count is None else count
    # `seed=` (every scipy ≥ 1.11; 1.15 added `rng=`, which draws other points): the starts
    # measured in docs/reservoir-tuning.md
    unit = qmc.Sobol(len(names), scramble=True, seed=0).random(count)  # pyright: ignore[reportCallIssue]
    points = []
    for row in unit:
        point = {}
        for name, u in zip(names, row):
            scale, low, high = TUNING_RANGES[name]
            if scale == "linear":
                point[name] = low + float(u) * (high - low)
            else:
                point[name] = math.exp(math.log(low) + float(u) * math.log(high / low))
        points.append(point)
    return points


def _unconstrain(name: str, value: float) -> float:
    if name == "leak":
        value = min(max(value, 1e-6), LEAK_START_MAX)
        return math.log(value / (1 - value))
    if name == "ridge":
        value = max(value, RIDGE_FLOOR)
    return math.log(value)


class ReservoirHyperparameters(eqx.Module):
    """A reservoir's tunable hyperparameters in unconstrained coordinates: log of the
    positive ones (spectral radius, scalings, α), logit of the leak rate a ∈ (0, 1).

    **Arguments:**

    - `values`: name → value (positive; a leak in (0, 1]), e.g. `model.tunable_values()`.
    """

    coordinates: dict[str, Float[Array, ""]]

    def __init__(self, values: dict[str, Any]):
        self.coordinates = {
            name: jnp.asarray(_unconstrain(name, float(value)), dtype=float)
            for name, value in values.items()
        }

    def values(self) -> dict[str, Float[Array, ""]]:
        """The constrained values, by name."""
        return {
            name: jax.nn.sigmoid(theta) if name == "leak" else jnp.exp(theta)
            for name, theta in self.coordinates.items()
        }


def _scaled(values: dict[str, float], factor: float) -> dict[str, float]:
    return {
        name: value if name == "leak" else value * factor**2 if name == "ridge" else value * factor
        for name, value in values.items()
    }


def tuning_loss(
    forecasts: Float[Array, "starts horizon dim"],
    truths: Float[Array, "starts horizon dim"],
    spread: Float[Array, " dim"],
) -> Float[Array, ""]:
    """Mean over start points and steps of e² / (1 + e²), e² = mean_j ((ŷ_j − y_j) / σ_j)².

    A smooth version of `nn.ridge.choose_ridge`'s score (the per-step NRMSE capped at 1): ≈ e²
    while the forecast is good, → 1 (with a vanishing gradient) as it diverges; a non-finite
    step counts 1. In [0, 1); 0.5 is the error of forecasting the mean (e = 1).
    """
    finite = jnp.all(jnp.isfinite(forecasts), axis=-1)
    # a non-finite forecast replaced before the arithmetic: its gradient is 0, not NaN
    forecasts = jnp.where(finite[..., None], forecasts, truths)
    squared = jnp.mean(((forecasts - truths) / spread[None, None]) ** 2, axis=-1)
    return jnp.mean(jnp.where(finite, squared / (1 + squared), 1.0))


class _TuningLoss(eqx.Module):
    """`tuning_loss` of cross-validated forecasts of the training series, or (`fit_rows`
    given: the batch is the training series followed by the validation series) of the
    validation rows' forecasts by the readout fitted on the first `fit_rows` rows."""

    model: AbstractReservoir
    fit_rows: int | None = eqx.field(static=True, default=None)

    def __call__(self, hyperparameters: ReservoirHyperparameters, batch, key):
        del key
        values, exog = batch
        model = self.model.with_values(hyperparameters.values())
        regression = model.regression(values, exog)
        if self.fit_rows is not None:
            return tuning_loss(
                *held_out_forecasts(
                    *regression, model.ridge, fit_rows=self.fit_rows, unpenalised=[0]
                )
            )
        return tuning_loss(
            *cross_validated_forecasts(*regression, model.ridge, folds=FOLDS, unpenalised=[0])
        )

    @property
    def solves(self) -> int:
        """Readout solves per evaluation."""
        return 1 if self.fit_rows is not None else FOLDS


class _TrainingSeries(eqx.Module):
    """The batch source: the whole training series at every step (the loss is full batch)."""

    values: Float[Array, "time dim"]
    exog: Float[Array, "time m"] | None

    def __call__(self, key, step, progress):
        del key, step, progress
        return self.values, self.exog


@eqx.filter_jit
def _loss_value(loss, hyperparameters, batch):
    return loss(hyperparameters, batch, None)


@dataclasses.dataclass(frozen=True)
class ReservoirTuning:
    """What tuning a reservoir by gradient did (`tune_reservoir`).

    - `model`: the registry name.
    - `initial`, `tuned`: the hyperparameters before and after, by name (`ridge` is α; with
      `ridge="auto"` the initial α is the one chosen on the grid).
    - `initial_loss`, `tuned_loss`: the validation loss (`tuning_loss`) at each.
    - `steps`: Adam steps taken; `seconds`: wall-clock seconds, compiling included.
    - `readout_solves`: ridge solves spent (the α grid, the starts, every step and
      validation: one per fold each).
    - `stop_reason`: why the tuning ended, in words.
    """

    model: str
    initial: dict[str, float]
    tuned: dict[str, float]
    initial_loss: float
    tuned_loss: float
    steps: int
    seconds: float
    readout_solves: int
    stop_reason: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> ReservoirTuning:
        """The inverse of `to_json`."""
        return cls(
            model=str(stored["model"]),
            initial={k: float(v) for k, v in stored["initial"].items()},
            tuned={k: float(v) for k, v in stored["tuned"].items()},
            initial_loss=float(stored["initial_loss"]),
            tuned_loss=float(stored["tuned_loss"]),
            steps=int(stored["steps"]),
            seconds=float(stored["seconds"]),
            readout_solves=int(stored["readout_solves"]),
            stop_reason=str(stored["stop_reason"]),
        )


def tunes_by_default(model: Tunable, budget: float | None = None, rows: int | None = None) -> bool:
    """Whether the training pipeline tunes `model`: `tune="on"`, or `"auto"` for an ESN (or
    an ESN ensemble) trained without a budget, with at least `AUTO_MIN_BUDGET` = 120 s, or on
    a short series (`rows` ≤ `AUTO_MAX_ROWS` = 1000 training rows) with at least
    `AUTO_SHORT_MIN_BUDGET` = 10 s.

    Measured in `experiments/reservoir_tuning.py` (`docs/reservoir-tuning.md`): in the ANCHORS
    setting (400 rows) tuning lengthened the ESN's forecasts (VPT 3.48 → 4.80 and 3.83 → 7.07
    Lyapunov times) but not NG-RC's (5.42 → 4.51, 5.55 → 5.49), whose α `ridge="auto"`
    already chooses on held-out data. Under the dysts protocol (1000 univariate rows, 10-s
    cells; `experiments/dysts_esn_tuning.py`) it lowered the ESN's median sMAPE from 78.2 to
    61.3 over the first 30 systems, within the budget (and from 112.1 to 90.0 over the next
    30, tuned without a budget). On the default `compare` systems in their 14-s cells
    (Lorenz-63, 10 000 rows; Mackey–Glass, 5000) it cost 11 s a cell for nothing (VPT 8.95 →
    8.68 and 5.08 → 3.44), and on a 3000-row Mackey–Glass series in 20 s the α grid and the
    starting points alone took 75 s.
    """
    if model.tune != "auto":
        return model.tune == "on"
    if model.name not in AUTO_TUNED:
        return False
    if budget is None or budget >= AUTO_MIN_BUDGET:
        return True
    return rows is not None and rows <= AUTO_MAX_ROWS and budget >= AUTO_SHORT_MIN_BUDGET


def tune_reservoir(
    model: AbstractReservoir,
    values: Float[Array, "time dim"],
    exog: Float[Array, "time m"] | None = None,
    *,
    key: PRNGKeyArray,
    validation: Float[Array, "rows dim"] | None = None,
    validation_exog: Float[Array, "rows m"] | None = None,
    steps: int = TUNING_STEPS,
    budget: float | None = None,
    learning_rate: float = TUNING_LEARNING_RATE,
    progress: bool | str = True,
) -> tuple[AbstractReservoir, ReservoirTuning]:
    """Tune a reservoir's hyperparameters by gradient of its held-out forecast error.

    Starts from the model's values (with `ridge="auto"`, from the α that the grid of
    `choose_ridge` picks), runs `steps` Adam steps (clipped at global norm 1) on
    `tuning_loss` through `train`, validating every 5 steps, and keeps the best values seen.
    The readout is not fitted: call `fit_closed_form(values, exog, choose_ridge=False)` on
    the result.

    The tuning runs in float64 (the model keeps its dtype). The gradient starts from the best
    of the model's values scaled ×1, ×1/3, ×1/9 and ×3 (`START_FACTORS`) and, with a
    `validation` series, of 16 space-filling points of `TUNING_RANGES` (`start_points`).

    Which forecasts the loss scores:

    - without `validation`: blocked cross-validated closed-loop forecasts of the training
      series itself (3 folds, 3 solves an evaluation; `nn.ridge.cross_validated_forecasts`);
    - with `validation`, a held-out series that **continues** `values` in time (the rows
      right after it, as a time split gives them): closed-loop forecasts of up to 64 windows
      of 100 steps spread over it, by the readout fitted on all of `values` (one solve an
      evaluation; `nn.ridge.held_out_forecasts`). Better where the training series is short:
      in the ANCHORS setting (400 Lorenz-63 rows), over 400 random ESN settings the
      cross-validated loss ranked their test VPT with Spearman ρ = −0.48, the loss on a
      5000-row validation trajectory with ρ = −0.96 (`experiments/reservoir_ceiling.py`).

    **Arguments:**

    - `model`: an ESN or NG-RC (`AbstractReservoir`).
    - `values`, `exog`: the (standardised) training series `[T, d]` and inputs `[T, m]`.
    - `key`: the run's key (unused by the deterministic loss; the core wants one).
    - `validation`, `validation_exog`: the held-out continuation of `values` (`[rows, dim]`,
      standardised like it) and its inputs, scored instead of cross-validation when given.
    - `steps`, `budget`: the end of the tuning (steps, wall-clock seconds: see `train`).
    - `learning_rate`: Adam's, in the unconstrained coordinates (0.1: about a 10 % change of a
      scale per step).
    - `progress`: the core's progress bar (a string: its label).

    **Returns:** `(tuned model, ReservoirTuning)`.

    **Example:**

    ```python
    import jax, numpy as np
    from diffdyn.models import ESN
    from diffdyn.train import tune_reservoir

    t = np.arange(600) * 0.1
    series = np.stack([np.sin(t), np.cos(t)], axis=1)
    model = ESN(2, key=jax.random.key(0), size=50, washout=20)
    tuned, report = tune_reservoir(model, series, key=jax.random.key(1), steps=5)
    fitted = tuned.fit_closed_form(series, choose_ridge=False)
    report.tuned  # {'spectral_radius': ..., 'leak': ..., ..., 'ridge': ...}
    ```
    """
    if not isinstance(model, AbstractReservoir):
        raise DiffdynError(f"{type(model).__name__} has no hyperparameters to tune by gradient.")
    started = time.perf_counter()
    # float64 throughout the tuning (the model's own dtype is kept for its fit): in float32
    # the loss is rough at the small α that forecast best (a 0.2 % change of the spectral
    # radius moved it 7×), so its gradient pointed nowhere
    with jax.enable_x64(True):
        values = jnp.asarray(values, jnp.float64)
        exog = None if exog is None else jnp.asarray(exog, jnp.float64)
        precise = _as_float64(model)
        solves = 0
        if precise.auto_ridge:
            chosen_ridge = precise.fit_closed_form(values, exog).ridge
            precise = precise.with_values({"ridge": chosen_ridge})
            model = model.with_values({"ridge": chosen_ridge})
            solves += len(RIDGE_CANDIDATES) + 1
        first = ReservoirHyperparameters(precise.tunable_values())
        initial = {name: float(value) for name, value in first.values().items()}
        if validation is None:
            loss, batch = _TuningLoss(precise), (values, exog)
        else:
            loss, batch = _validation_loss(precise, values, exog, validation, validation_exog)

        def validate(hyperparameters) -> float:
            value = float(_loss_value(loss, hyperparameters, batch))
            return value if math.isfinite(value) else math.inf

        # the loss is not convex in the scales (from the ESN's defaults on Lorenz-63 the
        # gradient points to a larger spectral radius, while much smaller scales forecast far
        # better): the gradient starts from the best of a few scaled copies of the model's
        # values and, where a validation series can judge them, of `START_POINTS`
        # space-filling points of `TUNING_RANGES`. Cross-validated on the training series
        # alone, the wide points won on a noisier loss and lost out of sample (dysts, systems
        # 1-30: median sMAPE 75.2 with them, 55.4 without).
        candidates = [ReservoirHyperparameters(_scaled(initial, f)) for f in START_FACTORS]
        if validation is not None:
            candidates += [ReservoirHyperparameters(v) for v in start_points(list(initial))]
        losses = [validate(c) for c in candidates]
        initial_loss = losses[0]
        chosen = min(range(len(losses)), key=losses.__getitem__)
        start, best, tuned_loss = candidates[chosen], candidates[chosen], losses[chosen]
        solves += loss.solves * len(candidates)
        # the budget covers the whole tuning: what the α grid and the starts took is deducted
        left = None if budget is None else budget - (time.perf_counter() - started)
        steps_taken, stop_reason = 0, "the budget was spent before the gradient steps"
        if left is None or left > 0:
            try:
                outcome = train(
                    start,
                    loss,
                    _TrainingSeries(*batch),
                    optax.chain(optax.clip_by_global_norm(TUNING_CLIP), optax.adam(learning_rate)),
                    key=key,
                    steps=steps,
                    budget=left,
                    validate=validate,
                    validate_every=VALIDATE_EVERY,
                    max_failures=max(5, steps // 4),
                    progress=f"tuning {model.name}" if progress is True else progress,
                    divergence_advice="give tune=off (-p tune=off) or an explicit ridge.",
                )
            except TrainingError as error:
                # The gradient steps are a refinement of a start that was already validated:
                # when they diverge (a readout solve that went non-finite), the fit goes on
                # from that start, and the report says why.
                stop_reason = (
                    f"the gradient steps diverged, so the best start was kept ({error}; the "
                    "readout solves of those steps are not counted)"
                )
            else:
                if outcome.best_val < tuned_loss:  # else no validation beat the start
                    best, tuned_loss = outcome.module, outcome.best_val
                steps_taken, stop_reason = outcome.steps, outcome.stop_reason
                solves += loss.solves * (outcome.steps + len(outcome.history))
        tuned_values = {name: float(value) for name, value in best.values().items()}
    if not tuned_loss < initial_loss:  # nothing beat the model's own values: keep them exactly
        tuned_values, tuned_loss = dict(model.tunable_values()), initial_loss
        tuned_values = {name: float(value) for name, value in tuned_values.items()}
    report = ReservoirTuning(
        model=model.name,
        initial=initial,
        tuned=tuned_values,
        initial_loss=initial_loss,
        tuned_loss=tuned_loss,
        steps=steps_taken,
        seconds=time.perf_counter() - started,
        readout_solves=solves,
        stop_reason=stop_reason,
    )
    return model.with_values(tuned_values), report


def _validation_loss(model, values, exog, validation, validation_exog):
    """`_TuningLoss` on the training series followed by its held-out continuation, and that
    batch (the validation series in the training series' dtype); one sentence when the two do
    not fit together."""
    validation = jnp.asarray(validation, values.dtype)
    if validation.ndim != 2 or validation.shape[1] != values.shape[1]:
        raise DiffdynError(
            f"the validation series must have the training series' {values.shape[1]} "
            f"variable(s) as columns; got shape {tuple(validation.shape)}."
        )
    if validation.shape[0] < 3:
        raise DiffdynError(
            f"the validation series needs at least 3 rows; got {validation.shape[0]}."
        )
    if (exog is None) != (validation_exog is None):
        raise DiffdynError(
            "give inputs (exog) for both the training and the validation series, or for neither."
        )
    if not bool(jnp.all(jnp.isfinite(validation))):
        raise DiffdynError("the validation series has NaN or infinite values; clean it first.")
    rows = jax.eval_shape(lambda v, e: model.regression(v, e)[0], values, exog).shape[0]
    joined = jnp.concatenate([values, validation])
    joined_exog = None
    if exog is not None:
        joined_exog = jnp.concatenate([exog, jnp.asarray(validation_exog, exog.dtype)])
    return _TuningLoss(model, fit_rows=rows), (joined, joined_exog)


def fit_reservoir(
    model: Tunable,
    values: Float[Array, "time dim"],
    exog: Float[Array, "time m"] | None = None,
    *,
    key: PRNGKeyArray,
    budget: float | None = None,
    progress: bool | str = True,
) -> tuple[Tunable, ReservoirTuning | None]:
    """What the training pipeline does with a reservoir: tune it when `tunes_by_default`
    (within `BUDGET_SHARE` = 75 % of `budget`, the α grid and starts included), then fit the
    readout in closed form. An ESN ensemble is tuned through its first member
    (`tunable_member`), and every member is fitted with the tuned values.

    **Returns:** `(fitted model, ReservoirTuning or None when it was not tuned)`.
    """
    if not tunes_by_default(model, budget, rows=int(values.shape[0])):
        return model.fit_closed_form(values, exog), None
    _, report = tune_reservoir(
        model.tunable_member(),
        values,
        exog,
        key=key,
        budget=None if budget is None else BUDGET_SHARE * budget,
        progress=progress,
    )
    tuned = model.with_values(report.tuned)
    report = dataclasses.replace(report, model=model.name)
    return tuned.fit_closed_form(values, exog, choose_ridge=False), report
