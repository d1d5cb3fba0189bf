"""One Adam training step of an LSTM sequence model: diffdyn against `torch.nn.LSTM`.

The model: an LSTM (B = 32 sequences of T = 100 steps, d = 3 inputs, H = 64 hidden units)
whose every hidden state is read out by a linear layer; the loss is the mean squared error of
those readouts against targets. One step = loss + gradient + Adam update, float32.

- diffdyn: `diffdyn.nn.LSTMCell` run by `diffdyn.nn.run_sequence` (one input matmul for the
  whole sequence, the four gates fused in one recurrent matmul), `jax.vmap` over the batch, the
  readout applied to all hidden states at once after the scan, `jax.jit` of
  `value_and_grad` + `optax.adam`, parameters and optimiser state donated.
- peer: `torch.nn.LSTM` + `torch.nn.Linear` + `torch.optim.Adam`, eager, with its default
  number of threads (recorded).

Both sides get the same time-major arrays `[T, B, d]` (PyTorch's default layout) and start
from the same weights (PyTorch's initialisation copied into diffdyn), and `agreement` checks
that they compute the same loss and the same updated weights. Target: ratio = torch / diffdyn
≥ 1.0.

Variants, all timed interleaved with torch:

- `diffdyn_core` (**the headline**): the same model and loss trained through the core a user's
  training runs, `diffdyn.train.train` (50 steps per compiled call in a `lax.scan`, the
  non-finite guard, one device: the default of `train` and of `diffdyn train`), with a batch
  source that returns the fixed batch; time per step = wall time of a 50-step `train` call / 50.
- `diffdyn_core_2_devices`: the same with `devices=2` (the batch split over 2 host devices,
  as `diffdyn train --devices 2`). The core splits a batch's leading axis, so this variant
  feeds batch-major `[B, T, d]` arrays; `diffdyn_core_batch_major` is its one-device twin.
- `diffdyn_step`: the hand-written jitted step (`value_and_grad` + `optax.adam`, donated
  buffers, one call per step) that this benchmark timed before the core existed;
  `diffdyn_step_2_devices` the same data-parallel with `jax.shard_map` + `pmean`.

Two host devices are made before JAX starts (`diffdyn.train.devices.use_devices(2)`, what
`--devices 2` does); a one-device program runs as without them (compare `--one-device`).

Run `python bench/lstm_train_step.py` (writes `bench/results/lstm_train_step.json`) or add
`--quick` for a smoke test at small sizes that writes nothing unless `--out DIR` is given;
`--one-device` runs without the second host device (and without the two-device variants).
"""

from __future__ import annotations

import sys

DEVICES = 2
# `--no-xla-flags` is the old name of `--one-device` (two devices once came from XLA_FLAGS).
ONE_DEVICE = "--one-device" in sys.argv or "--no-xla-flags" in sys.argv

import argparse  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

from diffdyn.nn import LSTMCell, run_sequence  # noqa: E402
from diffdyn.train.devices import use_devices  # noqa: E402

if not ONE_DEVICE:
    use_devices(DEVICES)  # before JAX computes anything, as the CLI's --devices does

sys.path.insert(0, str(Path(__file__).parent))
from _harness import (  # noqa: E402
    comparison,
    core_agreement,
    core_runner,
    interleaved,
    print_table,
    torch_one_thread_medians,
    write_result,
)

FULL = {"batch": 32, "time": 100, "hidden": 64, "dim": 3, "rounds": 6, "repeats": 25}
FULL |= {"core_steps": 50}
QUICK = {"batch": 8, "time": 20, "hidden": 16, "dim": 3, "rounds": 2, "repeats": 3}
QUICK |= {"core_steps": 4}
LEARNING_RATE = 1e-3
SEED = 0


class SequenceModel(eqx.Module):
    """An LSTM whose every hidden state is read out linearly."""

    cell: LSTMCell
    readout: eqx.nn.Linear


def sequence_loss(model: SequenceModel, inputs, targets, batch_axis: int = 1):
    """MSE of the readout of every hidden state; `inputs`, `targets` `[T, B, d]` (or `[B, T, d]`
    with `batch_axis=0`)."""
    hiddens = jax.vmap(
        lambda x: run_sequence(model.cell, x)[0], in_axes=batch_axis, out_axes=batch_axis
    )(inputs)
    # The readout of all B·T hidden states is one matmul after the scan.
    assert model.readout.bias is not None
    predictions = hiddens @ model.readout.weight.T + model.readout.bias
    return jnp.mean((predictions - targets) ** 2)


def straightforward_loss(model: eqx.nn.LSTMCell, readout, inputs, targets):
    """The LSTM as first written: `eqx.nn.LSTMCell` in `lax.scan`, vmapped, batch-major."""

    def one(x):
        def step(state, x_t):
            state = model(x_t, state)
            return state, state[0]

        zeros = jnp.zeros(model.hidden_size)
        return jax.lax.scan(step, (zeros, zeros), x)[1]

    hiddens = jax.vmap(one)(inputs)
    predictions = jax.vmap(jax.vmap(readout))(hiddens)
    return jnp.mean((predictions - targets) ** 2)


def torch_side(size: dict[str, int]):
    torch.manual_seed(SEED)
    lstm = torch.nn.LSTM(size["dim"], size["hidden"])  # time-major, PyTorch's default
    readout = torch.nn.Linear(size["hidden"], size["dim"])
    optimiser = torch.optim.Adam([*lstm.parameters(), *readout.parameters()], lr=LEARNING_RATE)
    return lstm, readout, optimiser


def diffdyn_from_torch(lstm, readout, size: dict[str, int]) -> SequenceModel:
    """diffdyn's model with PyTorch's initial weights (same gate order i, f, g, o)."""
    as_jax = lambda t: jnp.asarray(t.detach().numpy())  # noqa: E731
    cell = LSTMCell(size["dim"], size["hidden"], key=jax.random.key(SEED))
    cell = eqx.tree_at(
        lambda c: (c.input_weight, c.recurrent_weight, c.bias),
        cell,
        (
            as_jax(lstm.weight_ih_l0),
            as_jax(lstm.weight_hh_l0),
            as_jax(lstm.bias_ih_l0 + lstm.bias_hh_l0),
        ),
    )
    linear = eqx.nn.Linear(size["hidden"], size["dim"], key=jax.random.key(SEED))
    linear = eqx.tree_at(
        lambda r: (r.weight, r.bias), linear, (as_jax(readout.weight), as_jax(readout.bias))
    )
    return SequenceModel(cell, linear)


def jax_stepper(loss, params, *, mesh: Mesh | None = None, batch_axis: int = 1):
    """A function of no arguments running one jitted Adam step in place, and the jitted step.

    With `mesh`, the batch is split across its devices (`shard_map`) and the gradients are
    averaged with `pmean`; the update runs replicated.
    """
    optimiser = optax.adam(LEARNING_RATE)
    local_grad = jax.value_and_grad(loss)
    grad = local_grad
    if mesh is not None:
        data: list[str | None] = [None, None, None]
        data[batch_axis] = "batch"
        data_spec = PartitionSpec(*data)

        def local(params, inputs, targets):
            value, grads = local_grad(params, inputs, targets)
            return jax.lax.pmean(value, "batch"), jax.lax.pmean(grads, "batch")

        grad = jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(PartitionSpec(), data_spec, data_spec),
            out_specs=(PartitionSpec(), PartitionSpec()),
            check_vma=False,
        )

    @partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, inputs, targets):
        value, grads = grad(params, inputs, targets)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    copy = jax.tree_util.tree_map(jnp.copy, params)
    if mesh is not None:
        copy = jax.device_put(copy, NamedSharding(mesh, PartitionSpec()))
    state = {"params": copy, "opt_state": optimiser.init(copy)}
    return state, step


def make_jax_runner(loss, params, inputs, targets, **options):
    state, step = jax_stepper(loss, params, **options)
    mesh = options.get("mesh")
    if mesh is not None:
        data: list[str | None] = [None, None, None]
        data[options.get("batch_axis", 1)] = "batch"
        sharding = NamedSharding(mesh, PartitionSpec(*data))
        inputs, targets = jax.device_put(inputs, sharding), jax.device_put(targets, sharding)

    def run():
        state["params"], state["opt_state"], value = step(
            state["params"], state["opt_state"], inputs, targets
        )
        return value

    return run


def agreement(model, lstm, readout, inputs_np, targets_np) -> dict[str, Any]:
    """Same loss, same gradients and same weights after one Adam step, from the same start."""
    inputs, targets = jnp.asarray(inputs_np), jnp.asarray(targets_np)
    params, static = eqx.partition(model, eqx.is_array)
    loss = lambda p, x, y: sequence_loss(eqx.combine(p, static), x, y)  # noqa: E731
    jax_loss, grads = jax.value_and_grad(loss)(params, inputs, targets)
    optimiser = optax.adam(LEARNING_RATE)
    updates, _ = optimiser.update(grads, optimiser.init(params), params)
    stepped = eqx.combine(optax.apply_updates(params, updates), static)

    torch_optimiser = torch.optim.Adam([*lstm.parameters(), *readout.parameters()], LEARNING_RATE)
    torch_optimiser.zero_grad()
    out, _ = lstm(torch.from_numpy(inputs_np))
    torch_loss = ((readout(out) - torch.from_numpy(targets_np)) ** 2).mean()
    torch_loss.backward()
    torch_grads = {
        "input_weight": lstm.weight_ih_l0.grad.numpy(),
        "recurrent_weight": lstm.weight_hh_l0.grad.numpy(),
        "bias": lstm.bias_ih_l0.grad.numpy(),  # = bias_hh_l0.grad: the two enter as a sum
    }
    grad_difference = max(
        float(np.max(np.abs(np.asarray(getattr(grads.cell, name)) - value)))
        for name, value in torch_grads.items()
    )
    torch_optimiser.step()
    # PyTorch keeps two LSTM biases that enter as a sum, and Adam moves each by about the
    # learning rate, so the summed bias moves twice as far as diffdyn's single bias: compare
    # every other weight after the step.
    stepped_torch = diffdyn_from_torch(
        lstm, readout, {"dim": inputs_np.shape[2], "hidden": model.cell.hidden_size}
    )
    without_bias = lambda m: (m.cell.input_weight, m.cell.recurrent_weight, m.readout)  # noqa: E731
    weight_difference = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(
            jax.tree_util.tree_leaves(without_bias(stepped)),
            jax.tree_util.tree_leaves(without_bias(stepped_torch)),
        )
    )
    loss_difference = abs(float(jax_loss) - float(torch_loss.detach()))
    return {
        "loss_diffdyn": float(jax_loss),
        "loss_torch": float(torch_loss),
        "loss_abs_difference": loss_difference,
        "lstm_grad_max_abs_difference": grad_difference,
        "weights_after_one_step_max_abs_difference": weight_difference,
        "weights_compared": "input and recurrent weights, readout (not the LSTM bias: see code)",
        "ok": bool(loss_difference < 1e-5 and grad_difference < 1e-5 and weight_difference < 1e-6),
    }


def hand_written_steps(loss, params, inputs, targets, steps: int):
    """The hand-written step `steps` times from `params`: the parameters after it, each loss."""
    state, step = jax_stepper(loss, params)
    losses = []
    for _ in range(steps):
        state["params"], state["opt_state"], value = step(
            state["params"], state["opt_state"], inputs, targets
        )
        losses.append(float(value))
    return state["params"], losses


def variant_summary(medians: dict[str, float], timings: dict[str, dict]) -> dict[str, Any]:
    """Every diffdyn variant's median, compilation and torch / it, with the target."""
    return {
        name: {
            "diffdyn_median_s": medians[name],
            "diffdyn_compile_s": timings[name]["compile_s"],
            "ratio": medians["torch"] / medians[name],
            "target_met": bool(medians["torch"] / medians[name] >= 1.0),
        }
        for name in medians
        if name.startswith(("diffdyn", "equinox"))
        and "only" not in name
        and "value_and_grad" not in name
    }


def bench(size: dict[str, int]) -> dict[str, Any]:
    B, T, H, d = size["batch"], size["time"], size["hidden"], size["dim"]
    K = size["core_steps"]
    rng = np.random.default_rng(SEED)
    inputs_np = rng.standard_normal((T, B, d)).astype(np.float32)
    targets_np = rng.standard_normal((T, B, d)).astype(np.float32)
    inputs, targets = jnp.asarray(inputs_np), jnp.asarray(targets_np)
    batch_major = (jnp.swapaxes(inputs, 0, 1), jnp.swapaxes(targets, 0, 1))

    lstm, readout, torch_optimiser = torch_side(size)
    model = diffdyn_from_torch(lstm, readout, size)
    checks = agreement(model, *torch_side(size)[:2], inputs_np, targets_np)

    params, static = eqx.partition(model, eqx.is_array)
    loss = lambda p, x, y: sequence_loss(eqx.combine(p, static), x, y)  # noqa: E731
    loss_batch_major = lambda p, x, y: sequence_loss(eqx.combine(p, static), x, y, 0)  # noqa: E731
    eqx_cell = eqx.nn.LSTMCell(d, H, key=jax.random.key(SEED))
    eqx_readout = eqx.nn.Linear(H, d, key=jax.random.key(SEED + 1))
    eqx_params = (eqx_cell, eqx_readout)

    inputs_torch, targets_torch = torch.from_numpy(inputs_np), torch.from_numpy(targets_np)

    def torch_step():
        torch_optimiser.zero_grad()
        out, _ = lstm(inputs_torch)
        value = ((readout(out) - targets_torch) ** 2).mean()
        value.backward()
        torch_optimiser.step()
        return value

    # Through the core: loss(module, batch, key), the same Adam, K steps per `train` call.
    optimiser = optax.adam(LEARNING_RATE)
    core_loss = lambda m, b, k: sequence_loss(m, *b)  # noqa: E731
    core_loss_batch_major = lambda m, b, k: sequence_loss(m, b[0], b[1], 0)  # noqa: E731
    core, core_last = core_runner(model, core_loss, (inputs, targets), optimiser, steps=K)
    runners = {
        "diffdyn_core": core,
        "torch": torch_step,
        "diffdyn_step": make_jax_runner(loss, params, inputs, targets),
    }
    steps = {"diffdyn_core": K}
    core_runs = {"diffdyn_core": (core_last, inputs, targets, loss)}
    runners["diffdyn_core_batch_major"], last_bm = core_runner(
        model, core_loss_batch_major, batch_major, optimiser, steps=K
    )
    steps["diffdyn_core_batch_major"] = K
    core_runs["diffdyn_core_batch_major"] = (last_bm, *batch_major, loss_batch_major)
    devices = jax.devices()
    two = len(devices) >= DEVICES and B % DEVICES == 0
    if two:
        name = f"diffdyn_core_{DEVICES}_devices"
        runners[name], last_two = core_runner(
            model, core_loss_batch_major, batch_major, optimiser, steps=K, devices=DEVICES
        )
        steps[name] = K
        core_runs[name] = (last_two, *batch_major, loss_batch_major)
        mesh = Mesh(np.array(devices[:DEVICES]), ("batch",))
        runners[f"diffdyn_step_{DEVICES}_devices"] = make_jax_runner(
            loss, params, inputs, targets, mesh=mesh
        )
    runners["diffdyn_step_batch_major"] = make_jax_runner(
        loss_batch_major, params, *batch_major, batch_axis=0
    )
    runners["equinox_straightforward"] = make_jax_runner(
        lambda p, x, y: straightforward_loss(p[0], p[1], x, y),
        eqx_params,
        *batch_major,
        batch_axis=0,
    )
    # Where the time goes: forward only, forward + backward, and the whole step.
    forward = jax.jit(loss)
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    runners["diffdyn_forward_only"] = lambda: forward(params, inputs, targets)
    runners["diffdyn_value_and_grad"] = lambda: value_and_grad(params, inputs, targets)

    def torch_forward():
        with torch.no_grad():
            out, _ = lstm(inputs_torch)
            return ((readout(out) - targets_torch) ** 2).mean()

    runners["torch_forward_only"] = torch_forward

    timings = interleaved(runners, size["rounds"], size["repeats"], steps)
    # The core computed what the hand-written step does: K steps from the same start (every
    # core call starts afresh, so its last outcome is one such run).
    core_checks = {}
    for name, (last, x, y, hand_loss) in core_runs.items():
        reference, losses = hand_written_steps(hand_loss, params, x, y, K)
        core_checks[name] = core_agreement(last["outcome"], eqx.combine(reference, static), losses)
        if not core_checks[name]["ok"]:
            raise AssertionError(f"{name} differs from the hand-written step: {core_checks[name]}")
    single = torch_one_thread_medians(
        core, torch_step, max(1, size["rounds"] // 2), size["repeats"], K
    )
    medians = {name: m["steady_median_s"] for name, m in timings.items()}
    record = comparison(
        compares=(
            f"one Adam step (loss + gradient + update) of an LSTM sequence model, B={B}, T={T}, "
            f"H={H}, d={d}, float32, MSE of a linear readout of every hidden state: diffdyn "
            f"(LSTMCell + run_sequence, vmap, trained through diffdyn.train.train, {K} steps "
            "per call, one device) vs torch.nn.LSTM + Linear + torch.optim.Adam"
        ),
        diffdyn=timings["diffdyn_core"],
        peer=timings["torch"],
        peer_name=f"torch {torch.__version__} nn.LSTM, {torch.get_num_threads()} threads",
        ratio_at_least=1.0,
        target="ratio torch / diffdyn ≥ 1.0 (ANCHORS: a straightforward lax.scan LSTM ≈ 0.7×)",
        settings={
            **{k: size[k] for k in ("batch", "time", "hidden", "dim")},
            "learning_rate": LEARNING_RATE,
            "layout": "time-major [T, B, d] on both sides (batch-major for the core on "
            f"{DEVICES} devices, which splits the leading axis)",
            "core_steps_per_train_call": K,
            "torch_num_threads": torch.get_num_threads(),
            "xla_devices": len(devices),
            "devices_made_by": None if ONE_DEVICE else f"use_devices({DEVICES})",
        },
        agreement=checks,
        agreement_core=core_checks,
        variants=variant_summary(medians, timings),
        diagnostics={
            "median_s": medians,
            "ratio_torch_over": {
                name: medians["torch"] / medians[name]
                for name in medians
                if name.startswith(("diffdyn", "equinox"))
                and "only" not in name
                and "value_and_grad" not in name
            },
            "variants": {
                "diffdyn_core": "headline: diffdyn.train.train, one device, time-major data, "
                f"{K} steps per call (time per step = call / {K})",
                "diffdyn_core_batch_major": "the same with [B, T, d] data (XLA transposes "
                "around the scan)",
                f"diffdyn_core_{DEVICES}_devices": f"the core with devices={DEVICES}: the "
                "batch-major batch split over the host devices (what --devices 2 runs)",
                "diffdyn_step": "the hand-written jitted step, one call per step (donated "
                "buffers), time-major: the headline before the core",
                f"diffdyn_step_{DEVICES}_devices": "the hand-written step data-parallel over "
                f"{DEVICES} host devices (shard_map + pmean)",
                "diffdyn_step_batch_major": "the hand-written step, data [B, T, d]",
                "equinox_straightforward": "eqx.nn.LSTMCell in lax.scan (input matmul per step, "
                "σ and tanh gate by gate), batch-major",
            },
            "torch_1_thread_median_s": single,
            "ratio_torch_1_thread_over_core": single["torch_1_thread"] / single["diffdyn"],
            "all_timings": timings,
        },
    )
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the JSON (default bench/results; "
        "with --quick nothing is written unless --out is given)",
    )
    parser.add_argument(
        "--one-device",
        "--no-xla-flags",
        action="store_true",
        help="do not make the second host device (no two-device variants); to check that "
        "it leaves the single-device figures alone",
    )
    args = parser.parse_args(argv)
    record = bench(QUICK if args.quick else FULL)
    record["quick"] = args.quick
    if args.out is not None or not (args.quick or args.one_device):
        print(f"wrote {write_result('lstm_train_step', record, args.out)}")
    print_table(
        "LSTM training step (float32)" + (" — quick" if args.quick else ""),
        {"lstm_train_step": record},
    )
    for name, v in record["variants"].items():
        print(
            f"torch / {name}: {v['ratio']:.3g}×  ({1e3 * v['diffdyn_median_s']:.3g} ms, "
            f"compile {v['diffdyn_compile_s']:.2g} s, target met: {v['target_met']})"
        )
    print(f"torch: {1e3 * record['peer_median_s']:.3g} ms")
    one = record["diagnostics"]["ratio_torch_1_thread_over_core"]
    print(f"torch on 1 thread / diffdyn_core: {one:.3g}×")
    print(f"agreement: {record['agreement']}")
    for name, check in record["agreement_core"].items():
        print(f"agreement {name} (core vs hand-written, {check['steps']} steps): {check}")


if __name__ == "__main__":
    main()
