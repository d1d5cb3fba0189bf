"""One training step of the Differentiable Neural Computer: diffdyn against eager PyTorch.

The model (Graves et al. 2016, Nature, Methods): an LSTM controller (hidden 64) reads
χ_t = [x_t; r_{t-1}]; a linear interface layer from h_t drives the DNC memory access (N = 32
slots of W = 16, R = 2 read heads, 1 write head: content weighting with smooth norms
√(‖x‖² + ε), usage and retention, allocation from a sort of the usage whose indices carry no
gradient, erase/add writes, a temporal link matrix per write head, backward/content/forward
read modes); the output is y_t = W_y [h_t; r_t] + b. These are the `diffdyn task --model dnc`
defaults. One step = the copy task's loss (8 bits, lengths 1–8, T = 17, batch 16; sigmoid
cross-entropy summed over bits on the scored steps, divided by their number, as in
`diffdyn.tasks.runner._bits_loss`) + gradient + global-norm clipping (10, the task runner's) +
Adam (lr 1e-3), float32.

- diffdyn (`diffdyn_core`, **the headline**): `diffdyn.nn.DNC` (one sequence, `lax.scan` over
  time, `jax.vmap` over the batch) trained through the core every `diffdyn task` run uses,
  `diffdyn.train.train` (50 steps per compiled call in a `lax.scan`, the non-finite guard,
  one device: the default), with a batch source returning the fixed batch and
  `optax.chain(clip_by_global_norm, adam)`; time per step = a 50-step `train` call / 50.
  Beside it: `diffdyn_core_2_devices` (`devices=2`: the batch split over two host devices, as
  `--devices 2`) and `diffdyn_step`, the hand-written `eqx.filter_jit` step (one call per
  step) this benchmark timed before the core existed.
- peer: the same DNC written as a PyTorch user would: an `nn.Module` with `nn.LSTMCell`, the
  memory operations on batched tensors, `torch.argsort` for the free list (indices carry no
  gradient, as in diffdyn), a Python `for` loop over time, eager (no `torch.compile`, no
  TorchScript), `clip_grad_norm_` + `torch.optim.Adam`, PyTorch's default threads (recorded).

The torch model is given diffdyn's initial weights (both store weights `[out, in]`, LSTM gates
in the order i, f, g, o). diffdyn's LSTM has one bias, so the torch `bias_hh` is set to zero
and frozen; `agreement` checks that the two give the same outputs, loss, gradients and weights
after one Adam step before anything is timed. Target: ratio = torch / diffdyn ≥ 3.0. The sides
are interleaved (rounds of repeats) so that changes of machine load hit both alike.
`diagnostics` adds the forward pass alone on both sides (`ratio_forward_only`), diffdyn's loss +
gradient without the optimiser, and the torch step on one thread.

Run `python bench/dnc_step.py` (writes `bench/results/dnc_step.json`), or add `--quick` for a
smoke test at small sizes that writes nothing unless `--out DIR` is given. Two host devices
are made before JAX starts (`diffdyn.train.devices.use_devices(2)`, what `--devices 2` does);
`--one-device` leaves them out (and the two-device variant; writes nothing unless `--out`).
`--one-core` (a diagnostic; one device; writes nothing unless `--out DIR` is given) pins the
process to one CPU before JAX starts: XLA's CPU client then makes a one-thread pool and runs
every kernel of the step on one thread, instead of handing ready kernels between its threads
(bench/README.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# `--one-core` (a diagnostic, not the headline): pin this process to one CPU before JAX starts,
# so that XLA's CPU client makes a one-thread pool and runs every kernel on one thread.
ONE_CORE = "--one-core" in sys.argv
if ONE_CORE:
    sys.argv.remove("--one-core")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
ONE_DEVICE = ONE_CORE or "--one-device" in sys.argv
if "--one-device" in sys.argv:
    sys.argv.remove("--one-device")
DEVICES = 2

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from diffdyn.nn import DNC  # noqa: E402
from diffdyn.tasks.algorithmic import copy_task  # noqa: E402
from diffdyn.train.devices import use_devices  # noqa: E402

if not ONE_DEVICE:
    use_devices(DEVICES)  # before JAX computes anything, as the CLI's --devices does

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
    "batch": 16,
    "bits": 8,
    "max_length": 8,
    "hidden": 64,
    "memory_size": 32,
    "word_size": 16,
    "read_heads": 2,
    "write_heads": 1,
    "rounds": 5,
    "repeats": 20,
    "core_steps": 50,
}
QUICK = FULL | {"batch": 4, "max_length": 3, "hidden": 16, "memory_size": 8, "word_size": 4}
QUICK |= {"rounds": 2, "repeats": 3, "core_steps": 4}
LEARNING_RATE = 1e-3  # the task runner's default
CLIP = 10.0  # the task runner's global-norm clip
SEED = 0
EPS = 1e-6  # diffdyn.nn.memory's smooth-norm ε


class TorchDNC(nn.Module):
    """The DNC as a PyTorch user writes it: batched memory ops, a Python loop over time."""

    def __init__(self, n_in, n_out, hidden, memory_size, word_size, read_heads, write_heads):
        super().__init__()
        self.N, self.W, self.R, self.Wh = memory_size, word_size, read_heads, write_heads
        modes = 1 + 2 * write_heads
        size = read_heads * (word_size + 2 + modes) + write_heads * (3 * word_size + 3)
        self.controller = nn.LSTMCell(n_in + read_heads * word_size, hidden)
        self.interface = nn.Linear(hidden, size)
        self.output = nn.Linear(hidden + read_heads * word_size, n_out)

    @staticmethod
    def content(memory, keys, strengths):
        """C(M, k, β) for [B, heads, W] keys against [B, N, W] memory: [B, heads, N]."""
        m = memory / torch.sqrt((memory * memory).sum(-1, keepdim=True) + EPS)
        k = keys / torch.sqrt((keys * keys).sum(-1, keepdim=True) + EPS)
        return torch.softmax(strengths[..., None] * torch.bmm(k, m.transpose(1, 2)), dim=-1)

    @staticmethod
    def allocation(usage):
        free_list = torch.argsort(usage, dim=-1, stable=True)  # integer: no gradient
        sorted_usage = usage.gather(-1, free_list)
        ones = torch.ones_like(usage[:, :1])
        used_before = torch.cumprod(torch.cat([ones, sorted_usage[:, :-1]], dim=-1), dim=-1)
        return torch.zeros_like(usage).scatter(-1, free_list, (1 - sorted_usage) * used_before)

    def parse(self, xi):
        B, R, W, Wh = xi.shape[0], self.R, self.W, self.Wh
        sizes = [R * W, R, Wh * W, Wh, Wh * W, Wh * W, R, Wh, Wh, R * (1 + 2 * Wh)]
        p = torch.split(xi, sizes, dim=-1)
        return (
            p[0].reshape(B, R, W),
            1 + F.softplus(p[1]),
            p[2].reshape(B, Wh, W),
            1 + F.softplus(p[3]),
            torch.sigmoid(p[4].reshape(B, Wh, W)),
            p[5].reshape(B, Wh, W),
            torch.sigmoid(p[6]),
            torch.sigmoid(p[7]),
            torch.sigmoid(p[8]),
            torch.softmax(p[9].reshape(B, R, 1 + 2 * Wh), dim=-1),
        )

    def memory_step(self, state, xi):
        memory, usage, links, precedence, read_w, write_w = state
        r_keys, r_str, w_keys, w_str, erase, w_vec, free, alloc_g, write_g, modes = self.parse(xi)
        Wh = self.Wh
        retention = torch.prod(1 - free[..., None] * read_w, dim=1)
        usage = (1 - (1 - usage) * torch.prod(1 - write_w, dim=1)) * retention
        write_content = self.content(memory, w_keys, w_str)
        provisional, weights = usage, []
        for h in range(Wh):
            a = self.allocation(provisional)
            g, ga = write_g[:, h : h + 1], alloc_g[:, h : h + 1]
            provisional = provisional + (1 - provisional) * g * ga * a
            weights.append(g * (ga * a + (1 - ga) * write_content[:, h]))
        write_w = torch.stack(weights, dim=1)  # [B, Wh, N]
        keep = torch.prod(1 - write_w[..., None] * erase[:, :, None, :], dim=1)
        memory = memory * keep + torch.bmm(write_w.transpose(1, 2), w_vec)
        w_i, w_j = write_w[..., :, None], write_w[..., None, :]
        links = (1 - w_i - w_j) * links + w_i * precedence[:, :, None, :]
        links = links * (1 - torch.eye(self.N, dtype=links.dtype))
        precedence = (1 - write_w.sum(-1, keepdim=True)) * precedence + write_w
        forward = torch.einsum("bhij,brj->brhi", links, read_w)
        backward = torch.einsum("bhji,brj->brhi", links, read_w)
        read_content = self.content(memory, r_keys, r_str)
        read_w = (
            torch.einsum("brh,brhi->bri", modes[..., :Wh], backward)
            + modes[..., Wh : Wh + 1] * read_content
            + torch.einsum("brh,brhi->bri", modes[..., Wh + 1 :], forward)
        )
        reads = torch.bmm(read_w, memory)  # [B, R, W]
        return reads, (memory, usage, links, precedence, read_w, write_w)

    def forward(self, inputs):
        """`inputs [B, T, n_in]` → logits `[B, T, n_out]`."""
        B, N, W, R, Wh = inputs.shape[0], self.N, self.W, self.R, self.Wh
        hidden = self.controller.hidden_size
        h = c = inputs.new_zeros(B, hidden)
        state = (
            inputs.new_zeros(B, N, W),
            inputs.new_zeros(B, N),
            inputs.new_zeros(B, Wh, N, N),
            inputs.new_zeros(B, Wh, N),
            inputs.new_zeros(B, R, N),
            inputs.new_zeros(B, Wh, N),
        )
        reads = inputs.new_zeros(B, R * W)
        outputs = []
        for t in range(inputs.shape[1]):
            h, c = self.controller(torch.cat([inputs[:, t], reads], dim=-1), (h, c))
            r, state = self.memory_step(state, self.interface(h))
            reads = r.reshape(B, R * W)
            outputs.append(self.output(torch.cat([h, reads], dim=-1)))
        return torch.stack(outputs, dim=1)


def parameter_pairs(model: Any, net: TorchDNC):
    """(name, diffdyn array, torch parameter) for every parameter the two models share."""
    ctrl = model.controller
    return [
        ("controller.input_weight", ctrl.input_weight, net.controller.weight_ih),
        ("controller.recurrent_weight", ctrl.recurrent_weight, net.controller.weight_hh),
        ("controller.bias", ctrl.bias, net.controller.bias_ih),
        ("interface.weight", model.memory.interface.weight, net.interface.weight),
        ("interface.bias", model.memory.interface.bias, net.interface.bias),
        ("output.weight", model.output.weight, net.output.weight),
        ("output.bias", model.output.bias, net.output.bias),
    ]


def build(size: dict[str, Any], n_in: int, n_out: int) -> DNC:
    keys = ("hidden", "memory_size", "word_size", "read_heads", "write_heads")
    return DNC(n_in, n_out, key=jax.random.key(SEED), **{k: size[k] for k in keys})


def torch_from_diffdyn(model: DNC, size: dict[str, Any], n_in: int, n_out: int):
    """The torch model with diffdyn's weights, and its optimiser."""
    keys = ("hidden", "memory_size", "word_size", "read_heads", "write_heads")
    net = TorchDNC(n_in, n_out, *(size[k] for k in keys))
    with torch.no_grad():
        for _, array, parameter in parameter_pairs(model, net):
            parameter.copy_(torch.from_numpy(np.array(array)).reshape(parameter.shape))
        # diffdyn's LSTM has one bias: PyTorch's second bias is zero and not trained.
        net.controller.bias_hh.zero_()
        net.controller.bias_hh.requires_grad_(False)
    trainable = [p for p in net.parameters() if p.requires_grad]
    n_diffdyn = sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))
    assert sum(p.numel() for p in trainable) == n_diffdyn
    return net, trainable, torch.optim.Adam(trainable, lr=LEARNING_RATE)


def loss_diffdyn(model, inputs, targets, mask):
    """`diffdyn.tasks.runner._bits_loss`: sigmoid cross-entropy over bits on the scored steps."""
    logits = jax.vmap(model)(inputs)
    per_step = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1) * mask
    return jnp.sum(per_step) / jnp.maximum(jnp.sum(mask), 1.0)


def loss_torch(net, inputs, targets, mask):
    logits = net(inputs)
    per_bit = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (per_bit.sum(-1) * mask).sum() / mask.sum().clamp(min=1.0), logits


def optimiser_diffdyn() -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(CLIP), optax.adam(LEARNING_RATE))


def plain_step(model, opt_state, inputs, targets, mask):
    value, grads = eqx.filter_value_and_grad(loss_diffdyn)(model, inputs, targets, mask)
    updates, opt_state = optimiser_diffdyn().update(
        grads, opt_state, eqx.filter(model, eqx.is_inexact_array)
    )
    return eqx.apply_updates(model, updates), opt_state, value


step_diffdyn = eqx.filter_jit(plain_step)


def diffdyn_runner(model, batch) -> Callable[[], Any]:
    state = {"model": model}
    state["opt"] = optimiser_diffdyn().init(eqx.filter(model, eqx.is_inexact_array))

    def run():
        state["model"], state["opt"], value = step_diffdyn(state["model"], state["opt"], *batch)
        return value

    return run


def torch_runner(net, trainable, optimiser, batch) -> Callable[[], Any]:
    def run():
        optimiser.zero_grad()
        value, _ = loss_torch(net, *batch)
        value.backward()
        nn.utils.clip_grad_norm_(trainable, CLIP)
        optimiser.step()
        return value.detach()

    return run


def agreement(model, size, batch_np) -> dict[str, Any]:
    """Same outputs, loss, gradients and weights after one clipped Adam step."""
    n_in, n_out = batch_np[0].shape[-1], batch_np[1].shape[-1]
    net, trainable, optimiser = torch_from_diffdyn(model, size, n_in, n_out)
    batch = tuple(jnp.asarray(a) for a in batch_np)
    batch_t = tuple(torch.from_numpy(a) for a in batch_np)

    logits = np.asarray(jax.vmap(model)(batch[0]))
    loss_t, logits_t = loss_torch(net, *batch_t)
    loss_t.backward()
    loss, grads = eqx.filter_value_and_grad(loss_diffdyn)(model, *batch)
    grad_difference = max(
        float(np.max(np.abs(np.asarray(g) - p.grad.numpy().reshape(np.shape(g)))))
        for (_, g, p) in parameter_pairs(grads, net)
    )
    grad_scale = max(
        float(np.max(np.abs(np.asarray(g)))) for (_, g, _) in parameter_pairs(grads, net)
    )
    grad_norm = float(optax.global_norm(eqx.filter(grads, eqx.is_inexact_array)))
    nn.utils.clip_grad_norm_(trainable, CLIP)
    optimiser.step()
    stepped, _, _ = eqx.filter_jit(lambda m, o, *b: plain_step(m, o, *b))(
        model, optimiser_diffdyn().init(eqx.filter(model, eqx.is_inexact_array)), *batch
    )
    weight_difference = max(
        float(np.max(np.abs(np.asarray(a) - p.detach().numpy().reshape(np.shape(a)))))
        for (_, a, p) in parameter_pairs(stepped, net)
    )
    output_difference = float(np.max(np.abs(logits - logits_t.detach().numpy())))
    loss_difference = abs(float(loss) - float(loss_t.detach()))
    return {
        "loss_diffdyn": float(loss),
        "loss_torch": float(loss_t.detach()),
        "loss_abs_difference": loss_difference,
        "output_max_abs_difference": output_difference,
        "grad_max_abs_difference": grad_difference,
        "grad_max_abs": grad_scale,
        "grad_global_norm": grad_norm,
        "clipped": grad_norm > CLIP,
        "weights_after_one_step_max_abs_difference": weight_difference,
        "ok": bool(
            output_difference < 1e-5
            and loss_difference < 1e-5
            and grad_difference < 1e-5
            and weight_difference < 1e-5
        ),
    }


def data(size: dict[str, Any]):
    """One copy-task batch as float32 NumPy arrays: inputs, targets, mask."""
    task = copy_task(
        jax.random.key(SEED + 1),
        size["batch"],
        num_bits=size["bits"],
        max_length=size["max_length"],
    )
    return tuple(np.array(a, dtype=np.float32) for a in (task.inputs, task.targets, task.mask))


def core_loss(model, batch, key):
    """`loss_diffdyn` as the core calls it: `loss(module, batch, key)`."""
    del key
    return loss_diffdyn(model, *batch)


def hand_written_steps(model, batch, steps: int):
    """The hand-written step `steps` times from `model`: the model after it, each loss."""
    opt_state = optimiser_diffdyn().init(eqx.filter(model, eqx.is_inexact_array))
    losses = []
    for _ in range(steps):
        model, opt_state, value = step_diffdyn(model, opt_state, *batch)
        losses.append(float(value))
    return model, losses


def bench(size: dict[str, Any]) -> dict[str, Any]:
    batch_np = data(size)
    n_in, n_out = batch_np[0].shape[-1], batch_np[1].shape[-1]
    model = build(size, n_in, n_out)
    checks = agreement(model, size, batch_np)
    if not checks["ok"]:
        raise AssertionError(f"diffdyn and torch differ: {checks}")

    K = size["core_steps"]
    batch = tuple(jnp.asarray(a) for a in batch_np)
    batch_t = tuple(torch.from_numpy(a) for a in batch_np)
    optimiser = optimiser_diffdyn()
    net, trainable, torch_optimiser = torch_from_diffdyn(model, size, n_in, n_out)
    core, core_last = core_runner(model, core_loss, batch, optimiser, steps=K)
    runners = {
        "diffdyn_core": core,
        "torch": torch_runner(net, trainable, torch_optimiser, batch_t),
        "diffdyn_step": diffdyn_runner(model, batch),
    }
    steps = {"diffdyn_core": K}
    core_runs = {"diffdyn_core": core_last}
    two = f"diffdyn_core_{DEVICES}_devices"
    if len(jax.devices()) >= DEVICES and batch_np[0].shape[0] % DEVICES == 0:
        runners[two], core_runs[two] = core_runner(
            model, core_loss, batch, optimiser, steps=K, devices=DEVICES
        )
        steps[two] = K
    # Where the time goes: the forward pass alone (loss, no gradient) on both sides, and
    # diffdyn's loss + gradient without the optimiser.
    forward = eqx.filter_jit(loss_diffdyn)
    value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(loss_diffdyn))
    runners["diffdyn_forward_only"] = lambda: forward(model, *batch)
    runners["diffdyn_value_and_grad"] = lambda: value_and_grad(model, *batch)[0]

    def torch_forward():
        with torch.no_grad():
            return loss_torch(net, *batch_t)[0]

    runners["torch_forward_only"] = torch_forward
    timings = interleaved(runners, size["rounds"], size["repeats"], steps)
    times = medians(timings)
    # Every core call starts afresh: its last outcome is K steps from the initial weights.
    reference, losses = hand_written_steps(model, batch, K)
    core_checks = {
        name: core_agreement(last["outcome"], reference, losses)
        for name, last in core_runs.items()
    }
    for name, check in core_checks.items():
        if not check["ok"]:
            raise AssertionError(f"{name} differs from the hand-written step: {check}")
    threads = torch.get_num_threads()
    single_medians = torch_one_thread_medians(
        runners["diffdyn_core"], runners["torch"], max(1, size["rounds"] // 2), size["repeats"],
        K,
    )  # fmt: skip
    variants = {
        name: {
            "diffdyn_median_s": times[name],
            "diffdyn_compile_s": timings[name]["compile_s"],
            "ratio": times["torch"] / times[name],
            "target_met": bool(times["torch"] / times[name] >= 3.0),
        }
        for name in times
        if name.startswith("diffdyn") and "only" not in name and "value_and_grad" not in name
    }
    B, T = batch_np[0].shape[:2]
    keys = ("hidden", "memory_size", "word_size", "read_heads", "write_heads")
    return comparison(
        compares=(
            f"one training step (copy-task sigmoid cross-entropy on scored steps + gradient + "
            f"global-norm clip {CLIP} + Adam) of a DNC (LSTM controller hidden={size['hidden']}, "
            f"memory {size['memory_size']}x{size['word_size']}, {size['read_heads']} read / "
            f"{size['write_heads']} write heads), copy task {size['bits']} bits, T={T}, "
            f"B={B}, float32: diffdyn (diffdyn.nn.DNC, lax.scan, vmap, trained through "
            f"diffdyn.train.train, {K} steps per call, one device) vs the same model in eager "
            "PyTorch (nn.LSTMCell, batched memory ops, Python loop over time)"
        ),
        diffdyn=timings["diffdyn_core"],
        peer=timings["torch"],
        peer_name=f"torch {torch.__version__} eager nn.Module, Python time loop, "
        f"{threads} threads",
        ratio_at_least=3.0,
        target="DNC training step against the same DNC in eager PyTorch (same sizes): ≥ 3× faster",
        settings={
            "batch": B,
            "time_steps": T,
            "bits": size["bits"],
            "max_length": size["max_length"],
            **{k: size[k] for k in keys},
            "learning_rate": LEARNING_RATE,
            "clip_global_norm": CLIP,
            "torch_num_threads": threads,
            "torch_bias_hh": "zero and frozen (diffdyn's LSTM has one bias)",
            "one_core": ONE_CORE,
            "core_steps_per_train_call": K,
            "xla_devices": len(jax.devices()),
            "devices_made_by": None if ONE_DEVICE else f"use_devices({DEVICES})",
            "cpus_used": (
                sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            ),
        },
        agreement=checks,
        agreement_core=core_checks,
        variants=variants,
        diagnostics={
            "median_s": times,
            "variants": {
                "diffdyn_core": f"headline: diffdyn.train.train, one device, {K} steps per call "
                f"(time per step = call / {K})",
                two: f"the core with devices={DEVICES}: the batch split over the host devices",
                "diffdyn_step": "the hand-written eqx.filter_jit step, one call per step: the "
                "headline before the core",
            },
            "ratio_forward_only": times["torch_forward_only"] / times["diffdyn_forward_only"],
            "backward_over_forward_diffdyn": (
                times["diffdyn_value_and_grad"] - times["diffdyn_forward_only"]
            )
            / times["diffdyn_forward_only"],
            "torch_1_thread_median_s": single_medians,
            "ratio_torch_1_thread_over_core": single_medians["torch_1_thread"]
            / single_medians["diffdyn"],
            "all_timings": timings,
        },
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    record = bench(QUICK if args.quick else FULL)
    record["quick"] = args.quick
    record["one_core"] = ONE_CORE
    if args.out is not None or not (args.quick or ONE_DEVICE):
        print(f"wrote {write_result('dnc_step', record, args.out)}")
    print_table("DNC training step (float32)" + (" — quick" if args.quick else ""),
                {"dnc_step": record})  # fmt: skip
    diagnostics = record["diagnostics"]
    for name, v in record["variants"].items():
        print(
            f"torch / {name}: {v['ratio']:.3g}×  ({1e3 * v['diffdyn_median_s']:.3g} ms, "
            f"compile {v['diffdyn_compile_s']:.2g} s)"
        )
    print(f"torch: {1e3 * record['peer_median_s']:.3g} ms")
    print(
        f"torch on 1 thread / diffdyn_core: {diagnostics['ratio_torch_1_thread_over_core']:.3g}×"
    )
    print(f"forward only, torch / diffdyn: {diagnostics['ratio_forward_only']:.3g}×")
    print(f"agreement: {record['agreement']}")
    for name, check in record["agreement_core"].items():
        print(f"agreement {name} (core vs hand-written, {check['steps']} steps): {check}")


if __name__ == "__main__":
    main()
