"""One training step of a small neural ODE: diffdyn (Diffrax) against torchdiffeq.

The setting of Diffrax's own benchmark against torchdiffeq (`benchmarks/small_neural_ode.py`
in patrick-kidger/diffrax): a vector field f(y) = tanh(W₂ softplus(W₁ y + b₁) + b₂), an MLP
4 → 32 → 4, applied to a batch of 64 states integrated together as one ODE (one step size
for the whole batch, on both sides), Dormand–Prince 5(4) with rtol = atol = 1e-6 over
t ∈ [0, 100], saved at 100 evenly spaced times. One step = the mean squared error of the
saved states against targets + its gradient (backpropagation through the solver's steps,
"discretise then optimise", on both sides) + an Adam update (lr 1e-3), float32. The targets
are the trajectories of a teacher field (the same MLP with every weight perturbed by 10 %
Gaussian noise) from the same initial states, solved at rtol = atol = 1e-8.

- diffdyn (`diffdyn_core`, **the headline**): `diffrax.diffeqsolve(ODETerm, Dopri5(),
  stepsize_controller=PIDController(rtol=1e-6, atol=1e-6), adjoint=RecursiveCheckpointAdjoint())`
  with the batch as one state `[64, 4]`, trained through the core every `diffdyn train` run
  uses, `diffdyn.train.train` (`core_steps` steps per compiled call, the non-finite guard, one
  device), with a batch source returning the fixed batch and `optax.adam`; time per step = a
  `train` call / `core_steps`. Beside it: `diffdyn_step`, the hand-written `eqx.filter_jit`
  step (one call per step).
- peer: `torchdiffeq.odeint(func, y0, t, method="dopri5", rtol=1e-6, atol=1e-6)` with
  `loss.backward()` through the solver (torchdiffeq's default, not its adjoint) and
  `torch.optim.Adam`, PyTorch's default threads (recorded). The field is the
  `nn.Sequential(Linear, Softplus, Linear, Tanh)` a user writes, eager (`torch_eager`), and
  the same under `torch.jit.script` (`torch_script`), which is what Diffrax's benchmark timed;
  the headline peer is whichever of the two was faster in this run (`peer_variant`).

Both sides start from the same weights (diffdyn's initialisation copied into torch; both store
`[out, in]`) and see the same initial states and targets. `agreement` checks, before anything is
timed, the losses, the gradients, the weights after one Adam step and the number of solver
steps each side took. The two controllers are alike (Hairer's starting step, RMS error norm,
safety 0.9, step ratio within [0.2, 10]) but not identical, so the comparison is of steps that
solve the same problem to the same tolerance; the step counts are recorded next to the times.
Target: ratio = torch / diffdyn ≥ 2.0. The sides are interleaved (rounds of repeats) so that
changes of machine load hit both alike. `diagnostics` adds the forward solve alone on both
sides, Diffrax with `BacksolveAdjoint` (the continuous adjoint Diffrax's benchmark used), the
same model solved per example under `jax.vmap` (each of the 64 with its own step size, as
`diffdyn.train.fit` batches forecasters), and torch on one thread.

Run `python bench/neural_ode_step.py` (writes `bench/results/neural_ode_step.json`), or add
`--quick` for a smoke test at small sizes that writes nothing unless `--out DIR` is given.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torchdiffeq
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _harness import (  # noqa: E402
    comparison,
    core_agreement,
    core_runner,
    interleaved,
    medians,
    parse_arguments,
    print_table,
    torch_one_thread_medians,
    write_result,
)

FULL = {
    "batch": 64,
    "dim": 4,
    "width": 32,
    "t1": 100.0,
    "saves": 100,
    "rounds": 5,
    "repeats": 10,
    "core_steps": 10,
}
QUICK = FULL | {"batch": 8, "t1": 5.0, "saves": 10, "rounds": 2, "repeats": 2, "core_steps": 2}
RTOL = ATOL = 1e-6
LEARNING_RATE = 1e-3
SEED = 0
TARGET = 2.0


class Field(eqx.Module):
    """f(t, y) = tanh(W₂ softplus(W₁ y + b₁) + b₂) for every row of a batch `[B, d]`."""

    mlp: eqx.nn.MLP

    def __init__(self, dim: int, width: int, *, key):
        self.mlp = eqx.nn.MLP(
            dim, dim, width, depth=1, activation=jax.nn.softplus, final_activation=jnp.tanh,
            key=key,
        )  # fmt: skip

    def __call__(self, t, y, args):
        del t, args
        return jax.vmap(self.mlp)(y)


def solve(field, y0, ts, *, rtol=RTOL, atol=ATOL, adjoint=None):
    """Dopri5 from `y0` [B, d] at `ts`; returns the states `[len(ts), B, d]` and the steps."""
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Dopri5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=adjoint or diffrax.RecursiveCheckpointAdjoint(),
    )
    stats = solution.stats
    return solution.ys, (stats["num_accepted_steps"], stats["num_rejected_steps"])


def loss_diffdyn(field, y0, ts, target, adjoint=None):
    states, _ = solve(field, y0, ts, adjoint=adjoint)
    return jnp.mean((states - target) ** 2)


def loss_per_example(field, y0, ts, target):
    """The same loss with every example solved on its own (its own step size), vmapped."""

    def one(y, t):
        states, _ = solve(field, y[None], ts)
        return jnp.mean((states[:, 0] - t) ** 2)

    return jnp.mean(jax.vmap(one, in_axes=(0, 1))(y0, target))


def optimiser_diffdyn() -> optax.GradientTransformation:
    return optax.adam(LEARNING_RATE)


def plain_step(field, opt_state, y0, ts, target):
    value, grads = eqx.filter_value_and_grad(loss_diffdyn)(field, y0, ts, target)
    updates, opt_state = optimiser_diffdyn().update(grads, opt_state)
    return eqx.apply_updates(field, updates), opt_state, value


step_diffdyn = eqx.filter_jit(plain_step)


def core_loss(field, batch, key):
    """`loss_diffdyn` as the core calls it: `loss(module, batch, key)`."""
    del key
    return loss_diffdyn(field, *batch)


def torch_field(field: Field, script: bool) -> tuple[nn.Module, list[torch.nn.Parameter]]:
    """The torch field with diffdyn's weights: `nn.Sequential`, eager or `torch.jit.script`."""
    first, second = field.mlp.layers
    net = nn.Sequential(
        nn.Linear(first.in_features, first.out_features),
        nn.Softplus(),
        nn.Linear(second.in_features, second.out_features),
        nn.Tanh(),
    )
    with torch.no_grad():
        for layer, source in ((net[0], first), (net[2], second)):
            layer.weight.copy_(torch.from_numpy(np.array(source.weight)))
            layer.bias.copy_(torch.from_numpy(np.array(source.bias)))
    parameters = list(net.parameters())
    module = torch.jit.script(net) if script else net
    return module, parameters


class TorchODE(nn.Module):
    """`torchdiffeq`'s calling convention, `func(t, y)`, counting evaluations."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.evaluations = 0

    def forward(self, t, y):
        self.evaluations += 1
        return self.net(y)


def loss_torch(func: TorchODE, y0, ts, target):
    states = torchdiffeq.odeint(func, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)
    return torch.mean((states - target) ** 2)


def torch_runner(func, parameters, batch) -> Callable[[], Any]:
    optimiser = torch.optim.Adam(parameters, lr=LEARNING_RATE)

    def run():
        optimiser.zero_grad()
        value = loss_torch(func, *batch)
        value.backward()
        optimiser.step()
        return value.detach()

    return run


def diffdyn_runner(field, batch, step=step_diffdyn) -> Callable[[], Any]:
    state = {"field": field, "opt": optimiser_diffdyn().init(eqx.filter(field, eqx.is_array))}

    def run():
        state["field"], state["opt"], value = step(state["field"], state["opt"], *batch)
        return value

    return run


def data(size: dict[str, Any], field: Field):
    """Initial states, save times and a teacher's trajectories, as float32 NumPy arrays."""
    y0 = jax.random.normal(jax.random.key(SEED + 1), (size["batch"], size["dim"]))
    ts = jnp.linspace(0.0, size["t1"], size["saves"])
    arrays, static = eqx.partition(field, eqx.is_array)
    leaves, tree = jax.tree_util.tree_flatten(arrays)
    keys = jax.random.split(jax.random.key(SEED + 2), len(leaves))
    noisy = [a * (1 + 0.1 * jax.random.normal(k, a.shape)) for a, k in zip(leaves, keys)]
    teacher = eqx.combine(jax.tree_util.tree_unflatten(tree, noisy), static)
    target, _ = eqx.filter_jit(lambda f, y, t: solve(f, y, t, rtol=1e-8, atol=1e-8))(
        teacher, y0, ts
    )
    return tuple(np.array(a, dtype=np.float32) for a in (y0, ts, target))


def agreement(field: Field, batch_np) -> dict[str, Any]:
    """Same loss, gradients, weights after one Adam step, and solver steps, on both sides."""
    batch = tuple(jnp.asarray(a) for a in batch_np)
    loss, grads = eqx.filter_jit(eqx.filter_value_and_grad(loss_diffdyn))(field, *batch)
    _, (accepted, rejected) = eqx.filter_jit(solve)(field, batch[0], batch[1])
    stepped, _, _ = step_diffdyn(
        field, optimiser_diffdyn().init(eqx.filter(field, eqx.is_array)), *batch
    )
    net, parameters = torch_field(field, script=False)
    func = TorchODE(net)
    optimiser = torch.optim.Adam(parameters, lr=LEARNING_RATE)
    loss_t = loss_torch(func, *(torch.from_numpy(a) for a in batch_np))
    evaluations = func.evaluations
    loss_t.backward()
    grads_ours = [a for layer in grads.mlp.layers for a in (layer.weight, layer.bias)]
    grad_scale = max(float(np.max(np.abs(np.asarray(g)))) for g in grads_ours)
    grad_difference = max(
        float(np.max(np.abs(np.asarray(g) - p.grad.numpy())))
        for g, p in zip(grads_ours, parameters)
    )
    optimiser.step()
    after = [a for layer in stepped.mlp.layers for a in (layer.weight, layer.bias)]
    weight_difference = max(
        float(np.max(np.abs(np.asarray(a) - p.detach().numpy())))
        for a, p in zip(after, parameters)
    )
    loss_difference = abs(float(loss) - float(loss_t.detach()))
    relative_grad = grad_difference / grad_scale
    return {
        "loss_diffdyn": float(loss),
        "loss_torch": float(loss_t.detach()),
        "loss_abs_difference": loss_difference,
        "loss_rel_difference": loss_difference / abs(float(loss_t.detach())),
        "grad_max_abs_difference": grad_difference,
        "grad_max_abs": grad_scale,
        "grad_max_rel_difference": relative_grad,
        "weights_after_one_step_max_abs_difference": weight_difference,
        "solver_steps_diffdyn": {"accepted": int(accepted), "rejected": int(rejected)},
        # torchdiffeq's dopri5 evaluates f 6 times a step (7 stages, the first reused from
        # the step before), plus twice before the first: f(y0) and the starting-step guess.
        "solver_steps_torch_from_evaluations": (evaluations - 2) / 6,
        "field_evaluations_torch": evaluations,
        "ok": bool(loss_difference < 1e-4 * abs(float(loss_t.detach())) and relative_grad < 1e-2),
    }


def bench(size: dict[str, Any]) -> dict[str, Any]:
    field = Field(size["dim"], size["width"], key=jax.random.key(SEED))
    batch_np = data(size, field)
    checks = agreement(field, batch_np)
    if not checks["ok"]:
        raise AssertionError(f"diffdyn and torch differ: {checks}")

    K = size["core_steps"]
    batch = tuple(jnp.asarray(a) for a in batch_np)
    batch_t = tuple(torch.from_numpy(a) for a in batch_np)
    core, core_last = core_runner(field, core_loss, batch, optimiser_diffdyn(), steps=K)
    eager, eager_parameters = torch_field(field, script=False)
    script, script_parameters = torch_field(field, script=True)
    backsolve = eqx.filter_jit(
        eqx.filter_value_and_grad(
            lambda f, *b: loss_diffdyn(f, *b, adjoint=diffrax.BacksolveAdjoint())
        )
    )
    per_example = eqx.filter_jit(eqx.filter_value_and_grad(loss_per_example))
    forward = eqx.filter_jit(loss_diffdyn)
    torch_forward_func = TorchODE(eager)

    def torch_forward():
        with torch.no_grad():
            return loss_torch(torch_forward_func, *batch_t)

    runners = {
        "diffdyn_core": core,
        "torch_eager": torch_runner(TorchODE(eager), eager_parameters, batch_t),
        "torch_script": torch_runner(TorchODE(script), script_parameters, batch_t),
        "diffdyn_step": diffdyn_runner(field, batch),
        "diffdyn_forward_only": lambda: forward(field, *batch),
        "torch_forward_only": torch_forward,
        "diffdyn_backsolve_value_and_grad": lambda: backsolve(field, *batch)[0],
        "diffdyn_per_example_vmap_value_and_grad": lambda: per_example(field, *batch)[0],
    }
    timings = interleaved(runners, size["rounds"], size["repeats"], {"diffdyn_core": K})
    times = medians(timings)
    reference, losses = hand_written_steps(field, batch, K)
    core_checks = {"diffdyn_core": core_agreement(core_last["outcome"], reference, losses)}
    if not core_checks["diffdyn_core"]["ok"]:
        raise AssertionError(f"the core differs from the hand-written step: {core_checks}")
    peer_variant = min(("torch_eager", "torch_script"), key=lambda name: times[name])
    threads = torch.get_num_threads()
    single = torch_one_thread_medians(
        runners["diffdyn_core"], runners[peer_variant], max(1, size["rounds"] // 2),
        size["repeats"], K,
    )  # fmt: skip
    variants = {
        name: {
            "diffdyn_median_s": times[name],
            "diffdyn_compile_s": timings[name]["compile_s"],
            "ratio": times[peer_variant] / times[name],
            "target_met": bool(times[peer_variant] / times[name] >= TARGET),
        }
        for name in ("diffdyn_core", "diffdyn_step")
    }
    B, d = batch_np[0].shape
    return comparison(
        compares=(
            f"one training step (MSE of 100 saved states + gradient through the solver + Adam "
            f"lr {LEARNING_RATE:g}) of a neural ODE, MLP {d}->{size['width']}->{d} (softplus, "
            f"tanh), batch {B} as one ODE state, dopri5 rtol=atol={RTOL:g} over "
            f"[0, {size['t1']:g}], float32: diffdyn (Diffrax Dopri5 + PIDController + "
            f"RecursiveCheckpointAdjoint, jit, trained through diffdyn.train.train, {K} steps "
            "per call) vs torchdiffeq.odeint(method='dopri5') with backprop through the solver "
            "and torch.optim.Adam"
        ),
        diffdyn=timings["diffdyn_core"],
        peer=timings[peer_variant],
        peer_name=f"torch {torch.__version__} + torchdiffeq {torchdiffeq.__version__}, "
        f"{peer_variant.removeprefix('torch_')} field, {threads} threads",
        ratio_at_least=TARGET,
        target="neural-ODE training step against torchdiffeq (MLP 4→32→4, batch 64, dopri5, "
        "rtol = atol = 1e-6, as in diffrax's benchmark setting): ≥ 2× faster",
        peer_variant=peer_variant,
        settings={
            **{k: size[k] for k in ("batch", "dim", "width", "t1", "saves")},
            "rtol": RTOL,
            "atol": ATOL,
            "learning_rate": LEARNING_RATE,
            "dtype": "float32",
            "torch_num_threads": threads,
            "core_steps_per_train_call": K,
            "targets": "teacher MLP (weights x (1 + 0.1 N(0, 1))) from the same y0, "
            "rtol=atol=1e-8",
        },
        agreement=checks,
        agreement_core=core_checks,
        variants=variants,
        diagnostics={
            "median_s": times,
            "ratio_torch_eager_over_core": times["torch_eager"] / times["diffdyn_core"],
            "ratio_torch_script_over_core": times["torch_script"] / times["diffdyn_core"],
            "ratio_forward_only": times["torch_forward_only"] / times["diffdyn_forward_only"],
            "ratio_peer_over_backsolve_value_and_grad": times[peer_variant]
            / times["diffdyn_backsolve_value_and_grad"],
            "per_example_vmap_over_core": times["diffdyn_per_example_vmap_value_and_grad"]
            / times["diffdyn_core"],
            "torch_1_thread_median_s": single,
            "ratio_torch_1_thread_over_core": single["torch_1_thread"] / single["diffdyn"],
            "all_timings": timings,
        },
    )


def hand_written_steps(field, batch, steps: int):
    """The hand-written step `steps` times from `field`: the field after it, each loss."""
    opt_state = optimiser_diffdyn().init(eqx.filter(field, eqx.is_array))
    losses = []
    for _ in range(steps):
        field, opt_state, value = step_diffdyn(field, opt_state, *batch)
        losses.append(float(value))
    return field, losses


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    record = bench(QUICK if args.quick else FULL)
    record["quick"] = args.quick
    if args.out is not None or not args.quick:
        print(f"wrote {write_result('neural_ode_step', record, args.out)}")
    print_table("neural-ODE training step (float32)" + (" — quick" if args.quick else ""),
                {"neural_ode_step": record})  # fmt: skip
    for name, v in record["variants"].items():
        print(
            f"{record['peer_variant']} / {name}: {v['ratio']:.3g}×  "
            f"({1e3 * v['diffdyn_median_s']:.3g} ms, compile {v['diffdyn_compile_s']:.2g} s)"
        )
    d = record["diagnostics"]
    print(f"torch eager {1e3 * d['median_s']['torch_eager']:.3g} ms, "
          f"script {1e3 * d['median_s']['torch_script']:.3g} ms")  # fmt: skip
    print(f"forward only, torch / diffdyn: {d['ratio_forward_only']:.3g}×")
    print(f"torch on 1 thread / diffdyn_core: {d['ratio_torch_1_thread_over_core']:.3g}×")
    print(f"agreement: {record['agreement']}")
    print(f"agreement_core: {record['agreement_core']}")


if __name__ == "__main__":
    main()
