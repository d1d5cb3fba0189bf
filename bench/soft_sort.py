"""Soft sorting and ranking: diffdyn.nn.soft_rank / soft_sort against the reference
implementation (google-research/fast-soft-sort) and against torchsort, side by side.

The target was set against the reference implementation of Blondel et al. 2020,
google-research/fast-soft-sort (NumPy + Numba; its PyTorch and JAX wrappers call the NumPy
operators row by row). It is **not on the package registry**: it installs from its GitHub
repository, `.venv/bin/pip install git+https://github.com/google-research/fast-soft-sort`
(it needs `numba`), so it is not a `bench` extra; its code is not vendored. The second peer
is `torchsort` (PyPI), the PyTorch implementation of the same algorithm (permutahedron
projection by isotonic regression with a C++ pool-adjacent-violators kernel, ported from
fast-soft-sort's Numba code): the fastest packaged implementation a user can pick. Both use
the same conventions as diffdyn (ascending, L2 regularisation, `regularization_strength` = ε).

Timed, in this one process, on θ ~ N(0, 1) of n = 1000 values, batch B = 64 (diffdyn:
`jax.jit(jax.vmap(op))`; torchsort: its batched `[B, n]` call; the reference: its NumPy
operators `SoftRank` / `SoftSort`, `compute()` and `vjp()` for each row, the loop its own
wrappers run), float32 on every side:

- `soft_sort_rank` (headline): forward and backward of Σ w ⊙ soft_rank(θ) (value and gradient
  with respect to θ), ε = 1, against the reference;
- the same for soft_sort and for ε = 0.01 and 0.001, forward only, one vector (B = 1), and
  everything against torchsort (`ratios_torchsort`).

Before timing, every side's values and gradients are compared (`agreement`) with the
reference run in float64: the same values. Target: ratio = reference / diffdyn ≥ 1 (as set:
"≥ 1× the speed of the reference fast-soft-sort implementation at n = 1000, same values").
Without the reference installed, the headline falls back to torchsort (and says so); without
either peer, the script says what to install and exits.

Run `python bench/soft_sort.py` (writes `bench/results/soft_sort.json`) or `--quick` (small,
writes nothing unless `--out DIR`).
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

try:
    import torch
    import torchsort
except ImportError:  # a separate extra: it compiles against the installed torch
    torchsort = None
try:
    from fast_soft_sort import numpy_ops as reference_ops
except ImportError:  # installed from GitHub only
    reference_ops = None

INSTALL_REFERENCE = ".venv/bin/pip install git+https://github.com/google-research/fast-soft-sort"
INSTALL_TORCHSORT = ".venv/bin/pip install --no-build-isolation torchsort==0.1.10"
if torchsort is None and reference_ops is None:
    print(f"soft_sort: skipped, neither peer is installed ({INSTALL_REFERENCE}; "
          f"{INSTALL_TORCHSORT}; see bench/README.md)")  # fmt: skip
    sys.exit(0)

from _harness import (  # noqa: E402
    _version,
    comparison,
    interleaved,
    medians,
    parse_arguments,
    print_table,
    torch_one_thread_medians,
    write_result,
)
from diffdyn.nn import soft_rank, soft_sort  # noqa: E402

# ε = 1 (the headline) and 0.01 leave N(0, 1) values of n = 1000 almost unranked (the soft
# ranks are (n + 1)/2 + θ/ε: one block); at 0.001 they are close to the hard ranks.
STRENGTHS = (1.0, 0.01, 0.001)
FULL = {"n": 1000, "batch": 64, "rounds": 5, "repeats": 10}
QUICK = {"n": 200, "batch": 8, "rounds": 1, "repeats": 3}
OURS = {"rank": soft_rank, "sort": soft_sort}


def diffdyn_runner(op, strength: float, theta, weights, backward: bool):
    def total(t):
        return jnp.sum(weights * jax.vmap(lambda row: op(row, strength=strength))(t))

    if backward:
        fn = jax.jit(jax.value_and_grad(total))
        return lambda: fn(theta)
    forward = jax.jit(jax.vmap(lambda row: op(row, strength=strength)))
    return lambda: forward(theta)


def _torch_op(name: str):
    assert torchsort is not None
    return {"rank": torchsort.soft_rank, "sort": torchsort.soft_sort}[name]


def torch_runner(name: str, strength: float, theta, weights, backward: bool):
    op = _torch_op(name)
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


def reference_runner(name: str, strength: float, theta, weights, backward: bool):
    """fast-soft-sort's NumPy operator on each row (what its PyTorch and JAX wrappers run):
    `compute()`, and with `backward` the VJP of the weights."""
    assert reference_ops is not None
    cls = {"rank": reference_ops.SoftRank, "sort": reference_ops.SoftSort}[name]

    def run():
        values = np.empty_like(theta)
        grads = np.empty_like(theta)
        for b in range(theta.shape[0]):
            op = cls(theta[b], regularization_strength=strength)
            values[b] = op.compute()
            if backward:
                grads[b] = op.vjp(weights[b])
        return (values, grads) if backward else values

    return run


def reference_values(name: str, strength: float, theta, weights):
    """Values and gradients in float64: the reference's own, or torchsort's without it."""
    theta64, weights64 = theta.astype(np.float64), weights.astype(np.float64)
    if reference_ops is not None:
        return reference_runner(name, strength, theta64, weights64, True)()
    return torch_values(name, strength, theta64, weights64, torch.float64)


def torch_values(name: str, strength: float, theta, weights, dtype):
    op = _torch_op(name)
    t = torch.tensor(theta, dtype=dtype, requires_grad=True)
    value = op(t, regularization_strength=strength)
    (torch.tensor(weights, dtype=dtype) * value).sum().backward()
    assert t.grad is not None
    return value.detach().double().numpy(), t.grad.double().numpy()


def agreement(theta_np, weights_np) -> dict[str, Any]:
    """Values and gradients of every float32 side for both ops at each ε, against the
    reference in float64 (float32 loses digits to cancellation at small ε, on any side)."""
    out: dict[str, Any] = {}
    ok = True
    for name, ours in OURS.items():
        for strength in STRENGTHS:

            def total(th, op=ours, e=strength):
                rows = jax.vmap(lambda r: op(r, strength=e))(th)
                return jnp.sum(weights_np * rows), rows

            grad, rows = jax.grad(total, has_aux=True)(jnp.asarray(theta_np))
            reference, reference_grad = reference_values(name, strength, theta_np, weights_np)
            scale = float(np.abs(reference).max())
            grad_scale = float(np.abs(reference_grad).max())
            record = {
                "reference": "fast-soft-sort float64"
                if reference_ops is not None
                else "torchsort float64",
                "value_max_abs": scale,
                "grad_max_abs": grad_scale,
                "diffdyn_value_max_abs_difference": float(np.abs(rows - reference).max()),
                "diffdyn_grad_max_abs_difference": float(np.abs(grad - reference_grad).max()),
            }
            sides = {}
            if reference_ops is not None:
                sides["fast_soft_sort_float32"] = reference_runner(
                    name, strength, theta_np, weights_np, True
                )()
            if torchsort is not None:
                sides["torchsort_float32"] = torch_values(
                    name, strength, theta_np, weights_np, torch.float32
                )
            for side, (value, side_grad) in sides.items():
                record[f"{side}_value_max_abs_difference"] = float(np.abs(value - reference).max())
                record[f"{side}_grad_max_abs_difference"] = float(
                    np.abs(side_grad - reference_grad).max()
                )
            out[f"{name}_eps_{strength:g}"] = record
            # ε = 0.001 is closest to the hard sort, where float32 cancellation is largest.
            tolerance = 1e-5 if strength >= 0.01 else 1e-4
            ok &= record["diffdyn_value_max_abs_difference"] <= tolerance * max(scale, 1.0)
            ok &= record["diffdyn_grad_max_abs_difference"] <= 10 * tolerance * max(
                grad_scale, 1.0
            )
    out["ok"] = bool(ok)
    return out


def bench(size: dict[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    B, n = size["batch"], size["n"]
    theta_np = rng.normal(size=(B, n)).astype(np.float32)
    # Tied values (float32 rounding makes a few) have no single gradient: any split of the
    # cotangent between them is one; redraw such rows so that all sides can be compared.
    while ties := [b for b in range(B) if len(np.unique(theta_np[b])) < n]:
        theta_np[ties] = rng.normal(size=(len(ties), n)).astype(np.float32)
    weights_np = rng.normal(size=(B, n)).astype(np.float32)
    checks = agreement(theta_np, weights_np)
    if not checks["ok"]:
        raise AssertionError(f"diffdyn and the reference differ: {checks}")
    theta, weights = jnp.asarray(theta_np), jnp.asarray(weights_np)
    peers: dict[str, Any] = {}
    if reference_ops is not None:
        peers["reference"] = (reference_runner, theta_np, weights_np)
    if torchsort is not None:
        peers["torch"] = (torch_runner, torch.from_numpy(theta_np), torch.from_numpy(weights_np))
    runners = {}
    for name, ours in OURS.items():
        for strength in STRENGTHS:
            for backward in (True, False):
                label = f"{name}_eps_{strength:g}_{'fwd_bwd' if backward else 'fwd'}"
                runners[f"diffdyn_{label}"] = diffdyn_runner(ours, strength, theta, weights,
                                                             backward)  # fmt: skip
                for peer, (make, th, w) in peers.items():
                    runners[f"{peer}_{label}"] = make(name, strength, th, w, backward)
    one_label = "rank_eps_1_fwd_bwd_one_vector"
    runners[f"diffdyn_{one_label}"] = diffdyn_runner(soft_rank, 1.0, theta[:1], weights[:1], True)
    for peer, (make, th, w) in peers.items():
        runners[f"{peer}_{one_label}"] = make("rank", 1.0, th[:1], w[:1], True)
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
    ratios = {
        peer: {
            case[len("diffdyn_") :]: times[f"{peer}_" + case[len("diffdyn_") :]] / t
            for case, t in times.items()
            if case.startswith("diffdyn_")
        }
        for peer in peers
    }
    diagnostics: dict[str, Any] = {"median_s": times, "rank_regime_by_strength": regime}
    if torchsort is not None:
        # On a loaded machine PyTorch's threads wait on each other: the same with one thread.
        single = {
            case: torch_one_thread_medians(
                runners[f"diffdyn_{case}"],
                runners[f"torch_{case}"],
                size["rounds"],
                size["repeats"],
            )  # fmt: skip
            for case in ("rank_eps_1_fwd_bwd", one_label)
        }
        diagnostics["torch_1_thread_median_s"] = single
        diagnostics["ratio_torch_1_thread"] = {
            case: m["torch_1_thread"] / m["diffdyn"] for case, m in single.items()
        }
    diagnostics["all_timings"] = timings
    headline = "reference" if reference_ops is not None else "torch"
    peer_names = {
        "reference": f"fast-soft-sort (google-research, GitHub; numpy_ops row by row, numba "
        f"{_version('numba')})",
        "torch": f"torchsort {_version('torchsort')} (torch {_version('torch')}, "
        f"{torch.get_num_threads() if torchsort is not None else 0} threads)",
    }
    return comparison(
        compares=(
            f"value and gradient of Σ w ⊙ soft_rank(θ) for a batch of {B} vectors of n={n} "
            "(θ ~ N(0, 1)), regularisation strength ε = 1 (L2), float32: diffdyn "
            "(jax.jit(jax.value_and_grad) over jax.vmap(diffdyn.nn.soft_rank)) vs "
            + peer_names[headline]
        ),
        diffdyn=timings["diffdyn_rank_eps_1_fwd_bwd"],
        peer=timings[f"{headline}_rank_eps_1_fwd_bwd"],
        peer_name=peer_names[headline],
        ratio_at_least=1.0,
        target="soft sort/rank: ≥ 1× the speed of the reference fast-soft-sort implementation "
        "at n = 1000, same values"
        + ("" if headline == "reference" else " (reference not installed: torchsort stands in)"),
        settings={"n": n, "batch": B, "dtype": "float32", "jax_devices": len(jax.devices())},
        agreement=checks,
        peers={peer: peer_names[peer] for peer in peers},
        ratios=ratios.get("reference", {}),
        ratios_torchsort=ratios.get("torch", {}),
        diagnostics=diagnostics,
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
    for peer, key in (("fast-soft-sort", "ratios"), ("torchsort", "ratios_torchsort")):
        for name, ratio in record[key].items():
            print(f"{peer} / diffdyn, {name}: {ratio:.3g}×  "
                  f"({1e3 * median['diffdyn_' + name]:.3g} ms)")  # fmt: skip
    for case, ratio in record["diagnostics"].get("ratio_torch_1_thread", {}).items():
        print(f"torchsort on 1 thread / diffdyn, {case}: {ratio:.3g}×")
    print(f"agreement ok: {record['agreement']['ok']}")


if __name__ == "__main__":
    main()
