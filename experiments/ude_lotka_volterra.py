"""The universal differential equation study: Lotka–Volterra with known growth and decay and a
network for the rest, the missing terms read off the network, and forecasts beyond the data.

Run: `.venv/bin/python experiments/ude_lotka_volterra.py` (every seed in one process), or in
parts, `... --seeds 0 2 4 --part /tmp/a.json`, `... --seeds 1 3 --clean --part /tmp/b.json`,
then `... --merge /tmp/a.json /tmp/b.json`. Writes `experiments/results/ude_lotka_volterra.json`
and `.png` atomically.

Setting (Rackauckas et al. 2020, "Universal Differential Equations for Scientific Machine
Learning", §2.1; issue 14's target):

- Truth: dx/dt = αx − βxy, dy/dt = γxy − δy with α, β, γ, δ = 1.3, 0.9, 0.8, 1.8 (the
  catalogue's `lotka-volterra`), x₀ = (0.44249296, 4.6280594), sampled every 0.1 over
  t ∈ [0, 3] (31 samples). Noise as the paper defines it: X + 0.05 · mean(X) · N(0, 1), the
  mean of each variable over the 31 samples (prey 0.507, predator 1.013: σ = 0.025, 0.051)
  — not diffdyn's `simulate(noise=0.05)`, whose σ is 5 % of each variable's *standard
  deviation* (0.389, 1.239): the paper's noise is 1.30 times larger for the prey and 0.82
  times for the predators. Noise seeds `SEEDS`, and the clean data.
- Hybrid (`experiments/lv_hybrid.py:PaperHybridLotkaVolterra`): dx/dt = αx + U(x, y)₁,
  dy/dt = −δy + U(x, y)₂, α and δ known and fixed; U the paper's network 2 → 5 → 5 → 5 → 2
  with activation exp(−h²) (87 weights, more than the 62 observed values: an
  over-parametrised fit, which `identify` allows for network weights).
- Fit, as the paper (ADAM at 0.1, then a second-order method; single shooting over [0, 3]):
  `identify(hybrid, data, fit=["net"], learning_rate=LEARNING_RATE, steps=STEPS,
  refine_steps=REFINE_STEPS)` — Adam through the training core (cosine decay, clip 1), then
  Levenberg–Marquardt in place of BFGS, Tsit5 rtol 1e-6 atol 1e-8, float32. The same fit from
  the command line: `diffdyn identify ... --fit net --learning-rate 0.1 --steps 600
  --refine-steps 300` (`docs/identify.md`).
- Variants, for both models alike: an early stop (Adam alone, the number of steps chosen on a
  held-out tail: `early_stopped`), and training longer (`LONG_STEPS` Adam, up to
  `LONG_REFINE_STEPS` Levenberg–Marquardt: `trained_longer`).
- Discovery: `discover_terms` on U evaluated along the fitted trajectory (the paper's: the
  network over the model's own states), degree `DEGREE`, the threshold chosen on the held-out
  last 20 % of the rows; also over the data's noisy states (what `diffdyn discover DIR --term
  net` does). Target: −βxy and +γxy within 10 % and no other term.
- Forecast: the fitted hybrid, a plain neural ODE (`PaperNeuralLotkaVolterra`: the whole
  vector field the same network, the same `identify` call, the same budget) and the
  discovered system (the known terms plus the discovered ones), each simulated from x₀ to
  t = 6 and compared with the noise-free truth: RMSE over t ∈ (3, 6]. Target: the hybrid
  closer to the truth than the neural ODE.
- Reference: the true model with β and γ unknown fitted to the same data by `identify`: its
  standard errors bound how well any fit can determine the interaction from these data.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # lv_hybrid.py, beside this script

from lv_hybrid import (  # noqa: E402
    PAPER_DEPTH,
    PAPER_WIDTH,
    PaperHybridLotkaVolterra,
    PaperNeuralLotkaVolterra,
)

from diffdyn import __version__  # noqa: E402
from diffdyn.discover import DiscoveredFlow, discover_terms  # noqa: E402
from diffdyn.files import atomic_write  # noqa: E402
from diffdyn.identify import identify  # noqa: E402
from diffdyn.metrics import rmse  # noqa: E402
from diffdyn.systems import get_system, simulate  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ude_lotka_volterra.json"
FIGURE = RESULTS.with_suffix(".png")
TRUTH = {"alpha": 1.3, "beta": 0.9, "gamma": 0.8, "delta": 1.8}
NOISE, DT, T_DATA, T_FORECAST = 0.05, 0.1, 3.0, 6.0
SEEDS = (0, 1, 2, 3, 4)
LEARNING_RATE = 0.1  # the paper's ADAM rate
STEPS = 600
REFINE_STEPS = 300  # identify's default is 100
HOLD_OUT = 0.2  # the early-stop variant: the last 20 % of the samples held out
EARLY_STEPS = (100, 300, 1000, 3000)
LONG_STEPS, LONG_REFINE_STEPS = 2000, 2000  # the trained-longer variant
DEGREE = 3
WITHIN = 0.10
TARGETS = ("net[prey]", "net[predator]")
INTERACTION = "prey predator"  # the one term both equations should keep


def data(seed: int, noise: float):
    """The paper's data: X + noise · mean(X) · N(0, 1), each variable's mean over the samples
    (Rackauckas et al. 2020, §2.1; diffdyn's `simulate(noise=)` scales by the standard
    deviation instead)."""
    clean = simulate(get_system("lotka-volterra"), t1=T_DATA, dt=DT, transient=0.0)
    values = np.asarray(clean.values, np.float64)
    draw = np.asarray(jax.random.normal(jax.random.key(seed), values.shape), np.float64)
    noisy = values + noise * values.mean(axis=0) * draw
    return clean.replace(values=noisy.astype(np.asarray(clean.values).dtype))


def truth_to(t1: float):
    return simulate(get_system("lotka-volterra"), t1=t1, dt=DT, transient=0.0)


def network_term(system, states: np.ndarray) -> np.ndarray:
    return np.asarray(jax.vmap(system.net)(jnp.asarray(states, jnp.float32)), np.float64)


def read_terms(states: np.ndarray, outputs: np.ndarray, degree: int = DEGREE):
    """The discovery, each interaction coefficient's relative error, and the spurious terms."""
    found = discover_terms(states, outputs, variable_names=["prey", "predator"], degree=degree,
                           target_names=TARGETS, term=True)  # fmt: skip
    expected = {"net[prey]": -TRUTH["beta"], "net[predator]": TRUTH["gamma"]}
    errors, spurious = {}, {}
    for target, value in expected.items():
        active = found.active_terms(target)
        kept = active.get(INTERACTION)
        errors[target] = None if kept is None else abs(kept - value) / abs(value)
        spurious[target] = {t: c for t, c in active.items() if t != INTERACTION}
    worst = max(math.inf if e is None else e for e in errors.values())
    return {
        "equations": found.equations(),
        "method": found.method(),
        "relative_errors": errors,
        "worst_relative_error": worst,
        "spurious_terms": spurious,
        "met": bool(worst <= WITHIN and not any(spurious.values())),
    }, found


def discovered_system(found, dtype=jnp.float32) -> DiscoveredFlow:
    """The known terms (αx, −δy) plus the discovered ones, as a flow in `dtype`."""
    coefficients = np.array(found.coefficients, dtype=np.float64)
    names = found.library.names
    coefficients[names.index("prey"), 0] += TRUTH["alpha"]
    coefficients[names.index("predator"), 1] -= TRUTH["delta"]
    y0 = jnp.asarray(get_system("lotka-volterra").initial_state(), dtype)
    return DiscoveredFlow(
        jnp.asarray(coefficients, dtype), y0, found.library, ("prey", "predator")
    )


def forecast(system, truth, y0=None) -> tuple[dict[str, Any], np.ndarray]:
    """Simulated from `y0` (default the true x₀) to T_FORECAST; RMSE over
    t ∈ (T_DATA, T_FORECAST] against the truth."""
    path = simulate(system, t1=T_FORECAST, dt=DT, transient=0.0, y0=y0,
                    check_finite=False).numpy()  # fmt: skip
    values, true = np.asarray(path.values, np.float64), np.asarray(truth.values, np.float64)
    after = np.asarray(truth.times) > T_DATA + 1e-9

    def error(rows):
        return rmse(values[rows], true[rows]) if np.isfinite(values[rows]).all() else None

    per_variable = {v: error((after, slice(i, i + 1))) for i, v in enumerate(truth.variables)}
    return {
        "rmse_after_data": error(after),
        "rmse_after_data_per_variable": per_variable,
        "rmse_on_data_interval": error(~after),
        "finite": bool(np.isfinite(values).all()),
    }, values


def fit(system, series, label: str):
    started = time.perf_counter()
    result = identify(system, series, fit=["net"], learning_rate=LEARNING_RATE, steps=STEPS,
                      refine_steps=REFINE_STEPS)  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"  {label}: loss {result.loss:.4g}, residual RMS "
          + ", ".join(f"{v} {r:.3g}" for v, r in result.noise.items())
          + f" in {seconds:.1f} s", flush=True)  # fmt: skip
    return result, {
        "loss": result.loss,
        "data_loss": result.data_loss,
        "residual_rms": result.noise,
        "weights": result.networks["net"],
        "adam_steps": result.adam_steps,
        "levenberg_marquardt_steps": result.refine_steps,
        "refined": result.refined,
        "seconds": seconds,
        "notes": list(result.notes),
    }


def early_stopped(factory, series, label: str):
    """An early stop chosen on a held-out tail: Adam alone (lr `LEARNING_RATE`) for each of
    `EARLY_STEPS` on the first `1 − HOLD_OUT` of the series (t ≤ 2.4), each fitted model
    simulated from its fitted initial state over the held-out samples and scored by their
    standardised RMSE against the (noisy) data; the best count is then refitted on the whole
    series. The same rule for the hybrid and the neural ODE."""
    rows = len(series.times)
    cut = rows - round(HOLD_OUT * (rows - 1))  # 31 samples: the first 25 (t ≤ 2.4) fitted
    train, held = series.slice(0, cut), np.asarray(series.values, np.float64)[cut:]
    scale = np.asarray(series.values, np.float64).std(axis=0)
    scores = {}
    for steps in EARLY_STEPS:
        result = identify(factory(), train, fit=["net"], learning_rate=LEARNING_RATE,
                          steps=steps, refine=False)  # fmt: skip
        path = simulate(result.system, t1=float(series.times[-1]), dt=DT, transient=0.0,
                        y0=result.initial_states[0], check_finite=False).numpy()  # fmt: skip
        ahead = np.asarray(path.values, np.float64)[cut:]
        score = float(np.sqrt((((ahead - held) / scale) ** 2).mean()))
        scores[steps] = score if math.isfinite(score) else math.inf
    chosen = min(scores, key=scores.get)
    result = identify(factory(), series, fit=["net"], learning_rate=LEARNING_RATE,
                      steps=chosen, refine=False)  # fmt: skip
    print(f"  {label}: held-out scores {scores}; {chosen} Adam steps, loss {result.loss:.4g}",
          flush=True)  # fmt: skip
    return result, {
        "held_out_score_per_adam_steps": {str(k): v for k, v in scores.items()},
        "chosen_adam_steps": chosen,
        "loss": result.loss,
        "residual_rms": result.noise,
    }


def parametric(series) -> dict[str, Any]:
    """The reference: the true model with β and γ unknown (started at 0.5), fitted to the same
    data — how well these data determine the interaction coefficients at all."""
    start = get_system("lotka-volterra", beta=0.5, gamma=0.5)
    result = identify(start, series, fit=["beta", "gamma"], steps=300,
                      refine_steps=REFINE_STEPS)  # fmt: skip
    se = result.standard_errors or {}
    return {
        "fitted": {n: float(result.fitted[n]) for n in ("beta", "gamma")},
        "relative_errors": result.relative_errors({n: TRUTH[n] for n in ("beta", "gamma")}),
        "standard_errors": {n: float(v) for n, v in se.items()},
        "relative_standard_errors": {n: float(v) / TRUTH[n] for n, v in se.items()},
    }


def run(seed: int, noise: float, truth) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    series = data(seed, noise)
    states = np.asarray(series.values, np.float64)
    truth_values = np.asarray(data(seed, 0.0).values, np.float64)
    record: dict[str, Any] = {
        "seed": seed,
        "noise": noise,
        "noise_sigma": {
            v: noise * float(np.mean(truth_values[:, i])) for i, v in enumerate(series.variables)
        },  # fmt: skip
    }
    hybrid, record["hybrid_fit"] = fit(PaperHybridLotkaVolterra(), series, f"seed {seed} hybrid")
    trajectory = np.asarray(hybrid.trajectory.values, np.float64)
    along = network_term(hybrid.system, trajectory)
    exact = np.stack([-TRUTH["beta"], TRUTH["gamma"]])[None] * (
        truth_values[:, :1] * truth_values[:, 1:]
    )
    record["network_vs_true_interaction_relative_rms_on_the_true_states"] = (
        np.sqrt(((network_term(hybrid.system, truth_values) - exact) ** 2).mean(0))
        / np.sqrt((exact**2).mean(0))
    ).tolist()
    # The paper's reading: the network along the fitted trajectory (the primary result).
    record["discovery_over_fitted_trajectory"], found = read_terms(trajectory, along)
    record["discovery_over_fitted_trajectory_degree_2"], _ = read_terms(trajectory, along, 2)
    # What `diffdyn discover DIR --term net` reads: the network over the data's states.
    record["discovery_over_data_states"], _ = read_terms(
        states, network_term(hybrid.system, states)
    )
    neural, record["neural_ode_fit"] = fit(PaperNeuralLotkaVolterra(), series,
                                           f"seed {seed} neural")  # fmt: skip
    paths = {"data": states}
    record["forecast"], record["forecast_from_true_x0"], from_x0 = {}, {}, {}
    for name, system, start in (
        ("hybrid", hybrid.system, hybrid.initial_states[0]),
        ("neural_ode", neural.system, neural.initial_states[0]),
        ("discovered", discovered_system(found), hybrid.initial_states[0]),
    ):
        # Each model from its own fitted initial state (the discovered system from the
        # hybrid's): the fitted trajectory continued; and from the true x₀.
        record["forecast"][name], paths[name] = forecast(system, truth, start)
        record["forecast_from_true_x0"][name], from_x0[name] = forecast(system, truth)
    record["parametric_reference"] = parametric(series)
    # The variant: an early stop chosen on the held-out tail, for both models alike.
    early: dict[str, Any] = {}
    hybrid_e, early["hybrid_fit"] = early_stopped(PaperHybridLotkaVolterra, series,
                                                  f"seed {seed} hybrid, early stop")  # fmt: skip
    trajectory_e = np.asarray(hybrid_e.trajectory.values, np.float64)
    early["discovery_over_fitted_trajectory"], found_e = read_terms(
        trajectory_e, network_term(hybrid_e.system, trajectory_e)
    )
    early["discovery_over_data_states"], _ = read_terms(
        states, network_term(hybrid_e.system, states)
    )
    neural_e, early["neural_ode_fit"] = early_stopped(
        PaperNeuralLotkaVolterra, series, f"seed {seed} neural, early stop"
    )
    early["forecast"] = {}
    for name, system, start in (
        ("hybrid", hybrid_e.system, hybrid_e.initial_states[0]),
        ("neural_ode", neural_e.system, neural_e.initial_states[0]),
        ("discovered", discovered_system(found_e), hybrid_e.initial_states[0]),
    ):
        early["forecast"][name], _ = forecast(system, truth, start)
    he, ne = (early["forecast"][k]["rmse_after_data"] for k in ("hybrid", "neural_ode"))
    early["hybrid_beats_neural_ode"] = bool(he is not None and (ne is None or he < ne))
    record["early_stopped"] = early
    # The other variant: trained longer, towards convergence (the paper runs BFGS for up to
    # 10000 iterations after ADAM).
    long: dict[str, Any] = {}
    hybrid_l = identify(PaperHybridLotkaVolterra(), series, fit=["net"],
                        learning_rate=LEARNING_RATE, steps=LONG_STEPS,
                        refine_steps=LONG_REFINE_STEPS)  # fmt: skip
    neural_l = identify(PaperNeuralLotkaVolterra(), series, fit=["net"],
                        learning_rate=LEARNING_RATE, steps=LONG_STEPS,
                        refine_steps=LONG_REFINE_STEPS)  # fmt: skip
    for name, result in (("hybrid_fit", hybrid_l), ("neural_ode_fit", neural_l)):
        long[name] = {"loss": result.loss, "residual_rms": result.noise,
                      "levenberg_marquardt_steps": result.refine_steps}  # fmt: skip
    trajectory_l = np.asarray(hybrid_l.trajectory.values, np.float64)
    long["discovery_over_fitted_trajectory"], found_l = read_terms(
        trajectory_l, network_term(hybrid_l.system, trajectory_l)
    )
    long["discovery_over_data_states"], _ = read_terms(
        states, network_term(hybrid_l.system, states)
    )
    long["forecast"] = {}
    for name, system, start in (
        ("hybrid", hybrid_l.system, hybrid_l.initial_states[0]),
        ("neural_ode", neural_l.system, neural_l.initial_states[0]),
        ("discovered", discovered_system(found_l), hybrid_l.initial_states[0]),
    ):
        long["forecast"][name], _ = forecast(system, truth, start)
    hl, nl = (long["forecast"][k]["rmse_after_data"] for k in ("hybrid", "neural_ode"))
    long["hybrid_beats_neural_ode"] = bool(hl is not None and (nl is None or hl < nl))
    record["trained_longer"] = long
    print(f"  seed {seed} trained longer: loss {hybrid_l.loss:.3g} "
          f"{long['discovery_over_fitted_trajectory']['equations']}; "
          f"RMSE (3, 6]: hybrid {hl}, neural ODE {nl}", flush=True)  # fmt: skip
    print(f"  seed {seed} early stop: {early['discovery_over_fitted_trajectory']['equations']}; "
          f"RMSE (3, 6]: hybrid {he}, neural ODE {ne}", flush=True)  # fmt: skip
    h, n = (record["forecast"][k]["rmse_after_data"] for k in ("hybrid", "neural_ode"))
    record["hybrid_beats_neural_ode"] = bool(h is not None and (n is None or h < n))
    d = record["discovery_over_fitted_trajectory"]
    print(f"  seed {seed} noise {noise:g}: {d['equations']}; worst interaction error "
          f"{d['worst_relative_error']:.3g}; RMSE (3, 6]: hybrid {h}, neural ODE {n}, "
          f"discovered {record['forecast']['discovered']['rmse_after_data']}",
          flush=True)  # fmt: skip
    return record, paths


def draw(truth, paths: dict[str, np.ndarray], seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = np.asarray(truth.times)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for i, (ax, name) in enumerate(zip(axes, truth.variables)):
        ax.plot(times, np.asarray(truth.values)[:, i], color="black", lw=2, label="truth")
        ax.plot(times[: len(paths["data"])], paths["data"][:, i], "o", ms=3, color="gray",
                label=f"data ({NOISE:.0%} noise)")  # fmt: skip
        for key, style in (("hybrid", "-"), ("neural_ode", "--"), ("discovered", ":")):
            ax.plot(times, paths[key][:, i], style, lw=1.5, label=key.replace("_", " "))
        ax.axvline(T_DATA, color="gray", lw=0.8)
        ax.set_xlabel("t")
        ax.set_title(name)
        ax.set_ylim(-0.5, 1.3 * float(np.asarray(truth.values)[:, i].max()))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Lotka–Volterra UDE: fitted on t ∈ [0, 3], forecast to 6 from the fitted "
                 f"initial states (noise seed {seed})")  # fmt: skip
    fig.savefig(FIGURE.with_suffix(".tmp.png"), dpi=110)
    plt.close(fig)
    os.replace(FIGURE.with_suffix(".tmp.png"), FIGURE)


def finite(value: Any) -> Any:
    """`value` with every non-finite float as `None` (valid JSON)."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
    for reading in ("discovery_over_fitted_trajectory", "discovery_over_data_states"):
        errors = [r[reading]["worst_relative_error"] for r in runs]
        out[reading] = {
            "worst_interaction_error_over_seeds": max(
                math.inf if e is None else e for e in errors
            ),
            "interaction_errors_per_seed": errors,
            "seeds_meeting_the_discovery_target": sum(r[reading]["met"] for r in runs),
            "met_on_every_seed": all(r[reading]["met"] for r in runs),
        }
    for variant in ("early_stopped", "trained_longer"):
        for reading in ("discovery_over_fitted_trajectory", "discovery_over_data_states"):
            errors = [r[variant][reading]["worst_relative_error"] for r in runs]
            out[f"{variant}_{reading}"] = {
                "worst_interaction_error_over_seeds": max(
                    math.inf if e is None else e for e in errors
                ),
                "interaction_errors_per_seed": errors,
                "seeds_meeting_the_discovery_target": sum(
                    r[variant][reading]["met"] for r in runs
                ),
            }
        out[f"{variant}_forecast_rmse_after_data_per_seed"] = {
            k: [r[variant]["forecast"][k]["rmse_after_data"] for r in runs]
            for k in ("hybrid", "neural_ode", "discovered")
        }
        out[f"{variant}_seeds_where_hybrid_beats_neural_ode"] = sum(
            r[variant]["hybrid_beats_neural_ode"] for r in runs
        )
    out.update({
        "hybrid_beats_neural_ode_on_every_seed": all(r["hybrid_beats_neural_ode"] for r in runs),
        "seeds_where_hybrid_beats_neural_ode": sum(r["hybrid_beats_neural_ode"] for r in runs),
        "forecast_rmse_after_data_per_seed": {
            k: [r["forecast"][k]["rmse_after_data"] for r in runs]
            for k in ("hybrid", "neural_ode", "discovered")
        },
        "forecast_from_true_x0_rmse_after_data_per_seed": {
            k: [r["forecast_from_true_x0"][k]["rmse_after_data"] for r in runs]
            for k in ("hybrid", "neural_ode", "discovered")
        },
        "worst_forecast_rmse_after_data": {
            k: max((r["forecast"][k]["rmse_after_data"] or math.inf) for r in runs)
            for k in ("hybrid", "neural_ode", "discovered")
        },
        "worst_parametric_relative_error": max(
            max(r["parametric_reference"]["relative_errors"].values()) for r in runs
        ),
        "runs": runs,
    })  # fmt: skip
    return out


def settings() -> dict[str, Any]:
    return {
        "truth": TRUTH,
        "x0": list(get_system("lotka-volterra").y0),
        "data": f"t in [0, {T_DATA:g}] every {DT:g} (31 samples), the paper's noise "
        f"X + {NOISE:g} * mean(X) * N(0, 1) (each variable's mean over the samples; not "
        "simulate(noise=), which scales by the standard deviation), seeds "
        f"{list(SEEDS)}; and the same without noise",
        "hybrid": "dx/dt = alpha x + U_1, dy/dt = -delta y + U_2 (alpha, delta known)",
        "network": f"eqx.nn.MLP 2 -> {' -> '.join([str(PAPER_WIDTH)] * PAPER_DEPTH)} -> 2, "
        "activation exp(-x^2), 87 weights (over-parametrised: 62 observed values)",
        "fit": f"identify(..., fit=['net'], learning_rate={LEARNING_RATE}, steps={STEPS}, "
        f"refine_steps={REFINE_STEPS}): Adam (cosine decay, clip 1) through diffdyn.train.train, "
        "then Levenberg-Marquardt, single shooting, Tsit5 rtol 1e-6 atol 1e-8, float32",
        "neural_ode": "dx/dt, dy/dt = U(x, y), the same network, the same identify call",
        "discovery": f"discover_terms on U along the fitted trajectory (the paper's), degree "
        f"{DEGREE}, threshold chosen on the held-out last 20 % of the rows; also degree 2, and "
        "over the data's states (diffdyn discover DIR --term net)",
        "forecast": f"each model simulated from its fitted initial state (the discovered "
        f"system from the hybrid's) to t = {T_FORECAST:g}; RMSE over t in ({T_DATA:g}, "
        f"{T_FORECAST:g}] against the noise-free truth, both variables; also from the true x0 "
        "(forecast_from_true_x0)",
        "parametric_reference": "the true model with beta, gamma unknown (start 0.5), "
        "identify on the same data",
        "early_stopped": f"variant: Adam alone (lr {LEARNING_RATE}) for the count of "
        f"{list(EARLY_STEPS)} steps whose fit of t <= 2.4 best predicts the held-out last "
        f"{HOLD_OUT:.0%} of the samples (standardised RMSE, simulated from the fitted initial "
        "state), refitted on all samples with that count; both models alike",
        "target": f"-beta x y and +gamma x y within {WITHIN:.0%} and no other term, every "
        "seed; the hybrid's forecast RMSE below the neural ODE's",
    }


def machine() -> dict[str, Any]:
    """The machine and versions a result was measured with."""
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15min": list(os.getloadavg()),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "diffdyn": __version__,
    }


def write(noisy: list[dict[str, Any]], clean: dict[str, Any] | None, seconds: float) -> None:
    noisy = sorted(noisy, key=lambda r: r["seed"])
    record: dict[str, Any] = {
        "experiment": "ude_lotka_volterra",
        "settings": settings(),
        "noisy": summary(noisy),
        "clean": clean,
        "figure": f"{FIGURE.name}: {NOISE:.0%} noise, the seed with the worst interaction error "
        "along the fitted trajectory",
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "total_seconds": seconds,
    }
    text = json.dumps(finite(record), indent=2) + "\n"
    atomic_write(RESULTS, lambda f: f.write(text.encode()))
    print(f"wrote {RESULTS}")


def worst_error(record: dict[str, Any]) -> float:
    value = record["discovery_over_fitted_trajectory"]["worst_relative_error"]
    return math.inf if value is None else value


def main(argv: list[str]) -> None:
    started = time.perf_counter()
    if argv[:1] == ["--merge"]:
        parts = [json.loads(Path(f).read_text()) for f in argv[1:]]
        noisy = [r for part in parts for r in part["noisy"]]
        clean = next((part["clean"] for part in parts if part["clean"] is not None), None)
        worst_seed = max(noisy, key=worst_error)["seed"]
        paths_file = next(Path(f).with_suffix(f".seed{worst_seed}.npz") for f in argv[1:]
                          if Path(f).with_suffix(f".seed{worst_seed}.npz").exists())  # fmt: skip
        draw(truth_to(T_FORECAST), dict(np.load(paths_file)), worst_seed)
        write(noisy, clean, sum(part["seconds"] for part in parts))
        return
    seeds = [int(a) for a in argv[argv.index("--seeds") + 1 :] if a.isdigit()] \
        if "--seeds" in argv else list(SEEDS)  # fmt: skip
    part = Path(argv[argv.index("--part") + 1]) if "--part" in argv else None
    with_clean = part is None or "--clean" in argv
    truth = truth_to(T_FORECAST)
    noisy, worst = [], None
    for seed in seeds:
        record, paths = run(seed, NOISE, truth)
        noisy.append(record)
        if worst is None or worst_error(record) >= worst_error(worst[0]):
            worst = (record, paths)
        if part is not None:  # each seed kept as it finishes, its paths for the figure
            np.savez(part.with_suffix(f".seed{seed}.npz"), **paths)
            part.write_text(json.dumps(finite({"noisy": noisy, "clean": None, "seconds":
                                               time.perf_counter() - started})))  # fmt: skip
    clean = None
    if with_clean:
        print("clean data", flush=True)
        clean, _ = run(0, 0.0, truth)
    if worst is not None and part is None:
        draw(truth, worst[1], worst[0]["seed"])
    seconds = time.perf_counter() - started
    if part is None:
        write(noisy, clean, seconds)
    else:
        part.write_text(json.dumps(finite({"noisy": noisy, "clean": clean, "seconds": seconds})))
        print(f"wrote {part}")


if __name__ == "__main__":
    main(sys.argv[1:])
