"""Soft sorting and ranking: diffdyn.nn.soft_rank / soft_sort against torchsort, side by side.

The target was set against the reference implementation of Blondel et al. 2020,
google-research/fast-soft-sort (NumPy + Numba). That package is **not on the package
registry** (it is installed from its GitHub repository only), so it cannot be a `bench` extra;
its code is not vendored either. The peer here is `torchsort` (PyPI), the PyTorch
implementation of the same algorithm (permutahedron projection by isotonic regression with a
C++ pool-adjacent-violators kernel, ported from fast-soft-sort's Numba code), with the same
conventions (ascending, L2 regularisation, `regularization_strength` = ε).

Timed, in this one process, on θ ~ N(0, 1) of n = 1000 values, batch B = 64 (diffdyn:
`jax.jit(jax.vmap(op))`; torchsort: its batched `[B, n]` call), float32 on both sides:

- `soft_sort_rank` (headline): forward and backward of Σ w ⊙ soft_rank(θ) (value and gradient
  with respect to θ), ε = 1;
- diagnostics: forward only, soft_sort, ε = 0.01, and one vector (B = 1).

Before timing, both sides' values and gradients are compared (`agreement`): the same values.
Target: ratio = torchsort / diffdyn ≥ 1 (as set: "≥ 1× the speed of the reference at
n = 1000, same values").

Run `python bench/soft_sort.py` (writes `bench/results/soft_sort.json`) or `--quick` (small,
writes nothing unless `--out DIR`).
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

try:
    import torchsort
except ImportError:  # a separate extra: it compiles against the installed torch
    print(
        "soft_sort: skipped, torchsort is not installed (.venv/bin/pip install "
        "--no-build-isolation torchsort==0.1.10; see bench/README.md)"
    )
    sys.exit(0)

from _harness import (
    comparison,
    interleaved,
    medians,
    parse_arguments,
    print_table,
    torch_one_thread_medians,
    write_result,
)
from diffdyn.nn import soft_rank, soft_sort

# ε = 1 (the headline) and 0.01 leave N(0, 1) values of n = 1000 almost unranked (the soft
# ranks are (n + 1)/2 + θ/ε: one block); at 0.001 they are close to the hard ranks.
STRENGTHS = (1.0, 0.01, 0.001)
FULL = {"n": 1000, "batch": 64, "rounds": 5, "repeats": 10}
QUICK = {"n": 200, "batch": 8, "rounds": 1, "repeats": 3}
OPS = {"rank": (soft_rank, torchsort.soft_rank), "sort": (soft_sort, torchsort.soft_sort)}


def diffdyn_runner(op, strength: float, theta, weights, backward: bool):
    def total(t):
        return jnp.sum(weights * jax.vmap(lambda row: op(row, strength=strength))(t))

    if backward:
        fn = jax.jit(jax.value_and_grad(total))
        return lambda: fn(theta)
    forward = jax.jit(jax.vmap(lambda row: op(row, strength=strength)))
    return lambda: forward(theta)


def torch_runner(op, strength: float, theta, weights, backward: bool):
    if backward:

        def run():
            t = theta.clone().requires_grad_(True)
            value = (weights * op(t, regularization_strength=strength)).sum()
            value.backward()
            return t.grad

        return run

    def forward():
        with torch.no_grad():
            return op(theta, regularization_strength=strength)

    return forward


def agreement(size: dict[str, Any], theta_np, weights_np) -> dict[str, Any]:
    """Values and gradients of both float32 sides for both ops at ε = 1 and 0.01, each against
    torchsort in float64 (the reference values: float32 loses digits to cancellation at small
    ε, on either side)."""
    out: dict[str, Any] = {}
    ok = True
    for name, (ours, theirs) in OPS.items():
        for strength in (1.0, 0.01):

            def torch_side(dtype):
                t = torch.tensor(theta_np, dtype=dtype, requires_grad=True)
                value = theirs(t, regularization_strength=strength)
                (torch.tensor(weights_np, dtype=dtype) * value).sum().backward()
                return value.detach().double().numpy(), t.grad.double().numpy()

            def total(th):
                rows = jax.vmap(lambda r: ours(r, strength=strength))(th)
                return jnp.sum(weights_np * rows), rows

            grad, rows = jax.grad(total, has_aux=True)(jnp.asarray(theta_np))
            reference, reference_grad = torch_side(torch.float64)
            torch32, torch32_grad = torch_side(torch.float32)
            scale = float(np.abs(reference).max())
            grad_scale = float(np.abs(reference_grad).max())
            record = {
                "reference": "torchsort float64",
                "value_max_abs": scale,
                "grad_max_abs": grad_scale,
                "diffdyn_value_max_abs_difference": float(np.abs(rows - reference).max()),
                "diffdyn_grad_max_abs_difference": float(np.abs(grad - reference_grad).max()),
                "torchsort_float32_value_max_abs_difference": float(
                    np.abs(torch32 - reference).max()
                ),
                "torchsort_float32_grad_max_abs_difference": float(
                    np.abs(torch32_grad - reference_grad).max()
                ),
            }
            out[f"{name}_eps_{strength:g}"] = record
            ok &= record["diffdyn_value_max_abs_difference"] <= 1e-5 * max(scale, 1.0)
            ok &= record["diffdyn_grad_max_abs_difference"] <= 1e-4 * max(grad_scale, 1.0)
    out["ok"] = bool(ok)
    return out


def bench(size: dict[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    B, n = size["batch"], size["n"]
    theta_np = rng.normal(size=(B, n)).astype(np.float32)
    # Tied values (float32 rounding makes a few) have no single gradient: any split of the
    # cotangent between them is one; redraw such rows so that both sides can be compared.
    while ties := [b for b in range(B) if len(np.unique(theta_np[b])) < n]:
        theta_np[ties] = rng.normal(size=(len(ties), n)).astype(np.float32)
    weights_np = rng.normal(size=(B, n)).astype(np.float32)
    checks = agreement(size, theta_np, weights_np)
    if not checks["ok"]:
        raise AssertionError(f"diffdyn and torchsort differ: {checks}")
    theta, weights = jnp.asarray(theta_np), jnp.asarray(weights_np)
    theta_t, weights_t = torch.from_numpy(theta_np), torch.from_numpy(weights_np)
    runners = {}
    for name, (ours, theirs) in OPS.items():
        for strength in STRENGTHS:
            for backward in (True, False):
                label = f"{name}_eps_{strength:g}_{'fwd_bwd' if backward else 'fwd'}"
                runners[f"diffdyn_{label}"] = diffdyn_runner(ours, strength, theta, weights,
                                                             backward)  # fmt: skip
                runners[f"torch_{label}"] = torch_runner(theirs, strength, theta_t, weights_t,
                                                         backward)  # fmt: skip
    one, one_t = theta[:1], theta_t[:1]
    runners["diffdyn_rank_eps_1_fwd_bwd_one_vector"] = diffdyn_runner(
        soft_rank, 1.0, one, weights[:1], True
    )
    runners["torch_rank_eps_1_fwd_bwd_one_vector"] = torch_runner(
        torchsort.soft_rank, 1.0, one_t, weights_t[:1], True
    )
    # How far each ε is from the hard ranks (the regime each row measures).
    hard = np.argsort(np.argsort(theta_np, axis=1), axis=1) + 1.0
    regime = {}
    for strength in STRENGTHS:
        soft = np.asarray(jax.vmap(lambda t, e=strength: soft_rank(t, strength=e))(theta))
        regime[f"eps_{strength:g}"] = {
            "mean_abs_soft_minus_hard_rank": float(np.mean(np.abs(soft - hard))),
            "std_of_soft_ranks": float(np.mean(np.std(soft, axis=1))),
            "std_of_hard_ranks": float(np.mean(np.std(hard, axis=1))),
        }
    timings = interleaved(runners, size["rounds"], size["repeats"])
    times = medians(timings)
    # On a loaded machine PyTorch's threads wait on each other: the same with one thread.
    single = {
        case: torch_one_thread_medians(
            runners[f"diffdyn_{case}"], runners[f"torch_{case}"], size["rounds"], size["repeats"]
        )
        for case in ("rank_eps_1_fwd_bwd", "rank_eps_1_fwd_bwd_one_vector")
    }
    ratios = {
        name[len("diffdyn_") :]: times["torch_" + name[len("diffdyn_") :]] / t
        for name, t in times.items()
        if name.startswith("diffdyn_")
    }
    return comparison(
        compares=(
            f"value and gradient of Σ w ⊙ soft_rank(θ) for a batch of {B} vectors of n={n} "
            "(θ ~ N(0, 1)), regularisation strength ε = 1 (L2), float32: diffdyn "
            "(jax.jit(jax.value_and_grad) over jax.vmap(diffdyn.nn.soft_rank)) vs torchsort "
            "(batched soft_rank + backward); fast-soft-sort itself is not on the registry"
        ),
        diffdyn=timings["diffdyn_rank_eps_1_fwd_bwd"],
        peer=timings["torch_rank_eps_1_fwd_bwd"],
        peer_name=f"torchsort {metadata.version('torchsort')} (torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads)",
        ratio_at_least=1.0,
        target="soft sort/rank: ≥ 1× the speed of the reference fast-soft-sort implementation "
        "at n = 1000, same values (reference not installable: torchsort, the same algorithm, "
        "stands in)",
        settings={"n": n, "batch": B, "dtype": "float32", "jax_devices": len(jax.devices())},
        agreement=checks,
        ratios=ratios,
        diagnostics={
            "median_s": times,
            "rank_regime_by_strength": regime,
            "torch_1_thread_median_s": single,
            "ratio_torch_1_thread": {
                case: m["torch_1_thread"] / m["diffdyn"] for case, m in single.items()
            },
            "all_timings": timings,
        },
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    record = bench(QUICK if args.quick else FULL)
    record["quick"] = args.quick
    if args.out is not None or not args.quick:
        print(f"wrote {write_result('soft_sort', record, args.out)}")
    print_table("Soft rank (value + gradient)" + (" — quick" if args.quick else ""),
                {"soft_sort": record})  # fmt: skip
    median = record["diagnostics"]["median_s"]
    for name, ratio in record["ratios"].items():
        print(f"torchsort / diffdyn, {name}: {ratio:.3g}×  "
              f"({1e3 * median['diffdyn_' + name]:.3g} ms)")  # fmt: skip
    for case, ratio in record["diagnostics"]["ratio_torch_1_thread"].items():
        print(f"torchsort on 1 thread / diffdyn, {case}: {ratio:.3g}×")
    print(f"agreement ok: {record['agreement']['ok']}")


if __name__ == "__main__":
    main()
