"""One training step of the attention encoder–decoder: diffdyn against eager PyTorch.

The model (`seq2seq-attention`, Bahdanau, Cho & Bengio 2015; tutorial eqs. 6–10): a
bidirectional GRU encoder (H = 32 units each way) reads C = 32 context steps of d = 3
variables into annotations h_j = [→h_j ; ←h_j]; a GRU decoder of width 2H starts from
s_0 = tanh(W_s ←h_1 + b_s) and, for each of the 20 forecast steps, scores its state against
every annotation with the additive score e_ij = vᵀ tanh(W s_{i-1} + U h_j + b), takes the
context vector c_i = Σ_j softmax_j(e_ij) h_j, steps s_i = GRU(s_{i-1}, [ŷ_{i-1} ; c_i]) and
predicts the increment ŷ_i = ŷ_{i-1} + V [s_i ; c_i] + b_V, closed loop. With the registered
hyperparameters (at the time of writing `reencode=10`) the latest C values, observed or
forecast, are encoded again every 10 forecast steps and the decoder restarts from them: two
encoder–decoder passes per forecast of 20. One step = MSE over the horizon of B = 32
windows + gradient + global-norm clipping (1.0) + Adam (lr 2e-3), float32.

- diffdyn (`diffdyn_core`, **the headline**): `AttentionEncoderDecoder` with the registered
  hyperparameters (one example, `jax.vmap` over the batch, `lax.scan` over the chunks and the
  decoder steps) as `diffdyn train` trains it without a budget (`for_training(None)`: the
  default `unroll="auto"` unrolls the decoder's loops), trained through the core
  `diffdyn train` uses, `diffdyn.train.train` (50 steps per compiled call in a `lax.scan`,
  the non-finite guard, one device: the default), with a batch source returning the fixed
  batch and `optax.chain(clip_by_global_norm, adam)`; time per step = a 50-step `train` call
  / 50. Beside it: `diffdyn_core_rolled` (`unroll="off"`, what a budget under 60 s trains,
  `compare`'s cells among them), `diffdyn_core_2_devices` (`devices=2`, the batch split over
  two host devices, as `--devices 2`) and `diffdyn_step`, the hand-written `eqx.filter_jit`
  step (one call per step) this benchmark timed before.
- peer: the same model written as a PyTorch user would, an `nn.Module` with
  `nn.GRU(bidirectional=True, batch_first=True)`, `nn.Linear` layers for the score and the
  readout, `nn.GRUCell` and Python `for` loops over the chunks and decoder steps, eager (no
  `torch.compile`, no TorchScript), `clip_grad_norm_` + `torch.optim.Adam`, with PyTorch's
  default number of threads (recorded).

The torch model is given diffdyn's initial weights (both store weights `[out, in]`, gates in
the order r, z, n). diffdyn's GRU has one bias per gate and applies the reset gate to the
recurrent product (n = tanh(W_n x + b_n + r ⊙ U_n h), PyTorch's form with b_hn = 0), so the
torch GRUs' `bias_hh` is set to zero and frozen: both sides have the same parameters, and
`agreement` checks that they give the same forecasts, loss, gradients and weights after one
clipped Adam step before anything is timed. Target: ratio = torch / diffdyn ≥ 3.0.

Beside the headline, the JSON holds the same comparison without re-encoding (`no_reencode`:
`reencode=0`, one encoder pass and 20 decoder steps, Bahdanau's model) and with a context of
100 steps (`context_long`), both with the hand-written step; `diagnostics` adds the forward
passes alone and torch on one thread. The sides are interleaved (rounds of repeats) so that
changes of machine load hit both alike.

Run `python bench/attention_seq2seq_step.py` (writes
`bench/results/attention_seq2seq_step.json`), or add `--quick` for a smoke test at small sizes
that writes nothing unless `--out DIR` is given. Two host devices are made before JAX starts
(`diffdyn.train.devices.use_devices(2)`, what `--devices 2` does); `--one-device` leaves them
out (and the two-device variant; it writes nothing unless `--out` is given).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch import nn

from diffdyn.models.attention_seq2seq import AttentionEncoderDecoder
from diffdyn.models.registry import model_spec
from diffdyn.train.devices import use_devices

DEVICES = 2
ONE_DEVICE = "--one-device" in sys.argv
if ONE_DEVICE:
    sys.argv.remove("--one-device")
else:
    use_devices(DEVICES)  # before JAX computes anything, as the CLI's --devices does

sys.path.insert(0, str(Path(__file__).parent))
from _harness import (  # noqa: E402
    comparison,
    core_agreement,
    core_runner,
    interleaved,
    parse_arguments,
    print_table,
    torch_one_thread_medians,
    write_result,
)

FULL = {
    "batch": 32,
    "context": 32,
    "long_context": 100,
    "horizon": 20,
    "dim": 3,
    "hidden": 32,
    "rounds": 5,
    "repeats": 20,
    "reencode": None,  # the registered value
    "core_steps": 50,
}
QUICK = {
    "batch": 4,
    "context": 8,
    "long_context": 12,
    "horizon": 4,
    "dim": 3,
    "hidden": 8,
    "rounds": 2,
    "repeats": 3,
    "reencode": 2,  # so that the short horizon still re-encodes
    "core_steps": 4,
}
LEARNING_RATE = 2e-3  # seq2seq-attention's registered training rate
CLIP = 1.0  # TrainConfig's default global-norm clip
SEED = 0


class TorchAttentionSeq2Seq(nn.Module):
    """The attention encoder–decoder as a PyTorch user writes it: a Python loop over steps."""

    def __init__(self, dim: int, hidden: int, attention: int, reencode: int):
        super().__init__()
        width = 2 * hidden
        self.encoder = nn.GRU(dim, hidden, bidirectional=True, batch_first=True)
        self.init_state = nn.Linear(hidden, width)  # W_s, b_s
        self.query = nn.Linear(width, attention, bias=False)  # W
        self.key = nn.Linear(width, attention)  # U, with the score's bias
        self.vector = nn.Linear(attention, 1, bias=False)  # v
        self.decoder = nn.GRUCell(dim + width, width)
        self.readout = nn.Linear(2 * width, dim)
        self.hidden = hidden
        self.reencode = reencode

    def forward(self, context: torch.Tensor, horizon: int) -> torch.Tensor:
        """`context [B, C, d]` → forecast `[B, horizon, d]`, re-encoding the latest C values
        every `reencode` steps (0: never)."""
        every = self.reencode if 0 < self.reencode < horizon else horizon
        window, forecast = context, []
        while len(forecast) < horizon:
            chunk = self.decode(window, every)
            forecast += chunk
            window = torch.cat([window, torch.stack(chunk, dim=1)], dim=1)[:, -context.shape[1] :]
        return torch.stack(forecast[:horizon], dim=1)

    def decode(self, window: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """Encode `window [B, C, d]` and decode `steps` values after it."""
        annotations, _ = self.encoder(window)  # [B, C, 2H]: [→h_j ; ←h_j]
        state = torch.tanh(self.init_state(annotations[:, 0, self.hidden :]))  # s_0
        keys = self.key(annotations)  # U h_j + b, once
        y = window[:, -1]
        forecast = []
        for _ in range(steps):
            scores = self.vector(torch.tanh(keys + self.query(state)[:, None])).squeeze(-1)
            weights = torch.softmax(scores, dim=-1)  # [B, C]
            summary = torch.bmm(weights[:, None], annotations)[:, 0]  # c_i
            state = self.decoder(torch.cat([y, summary], dim=-1), state)
            y = y + self.readout(torch.cat([state, summary], dim=-1))
            forecast.append(y)
        return forecast


def parameter_pairs(model: AttentionEncoderDecoder, net: TorchAttentionSeq2Seq):
    """(name, diffdyn array, torch parameter) for every parameter the two models share."""
    enc, score = net.encoder, model.score
    return [
        ("forward.input_weight", model.forward.input_weight, enc.weight_ih_l0),
        ("forward.recurrent_weight", model.forward.recurrent_weight, enc.weight_hh_l0),
        ("forward.bias", model.forward.bias, enc.bias_ih_l0),
        ("backward.input_weight", model.backward.input_weight, enc.weight_ih_l0_reverse),
        ("backward.recurrent_weight", model.backward.recurrent_weight, enc.weight_hh_l0_reverse),
        ("backward.bias", model.backward.bias, enc.bias_ih_l0_reverse),
        ("init_weight", model.init_weight, net.init_state.weight),
        ("init_bias", model.init_bias, net.init_state.bias),
        ("score.query_weight", score.query_weight, net.query.weight),  # type: ignore[union-attr]
        ("score.key_weight", score.key_weight, net.key.weight),  # type: ignore[union-attr]
        ("score.bias", score.bias, net.key.bias),  # type: ignore[union-attr]
        ("score.vector", score.vector, net.vector.weight),  # type: ignore[union-attr]
        ("decoder.input_weight", model.decoder.input_weight, net.decoder.weight_ih),
        ("decoder.recurrent_weight", model.decoder.recurrent_weight, net.decoder.weight_hh),
        ("decoder.bias", model.decoder.bias, net.decoder.bias_ih),
        ("readout.weight", model.readout.weight, net.readout.weight),
        ("readout.bias", model.readout.bias, net.readout.bias),
    ]


def torch_from_diffdyn(model: AttentionEncoderDecoder, size: dict[str, int]):
    """The torch model with diffdyn's weights, and its optimiser."""
    attention = model.score.query_weight.shape[0]  # type: ignore[union-attr]
    net = TorchAttentionSeq2Seq(size["dim"], size["hidden"], attention, model.reencode)
    with torch.no_grad():
        for _, array, parameter in parameter_pairs(model, net):
            parameter.copy_(torch.from_numpy(np.array(array)).reshape(parameter.shape))
        # diffdyn's GRU has one bias per gate: PyTorch's second bias is zero and not trained.
        for name, parameter in net.named_parameters():
            if "bias_hh" in name:
                parameter.zero_()
                parameter.requires_grad_(False)
    n_parameters = sum(p.numel() for p in net.parameters() if p.requires_grad)
    n_diffdyn = sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))
    assert n_parameters == n_diffdyn, (n_parameters, n_diffdyn)
    trainable = [p for p in net.parameters() if p.requires_grad]
    return net, trainable, torch.optim.Adam(trainable, lr=LEARNING_RATE)


def forecast_diffdyn(model, context, horizon: int):
    return jax.vmap(lambda c: model(c, horizon=horizon)[0])(context)


def loss_diffdyn(model, context, target):
    return jnp.mean((forecast_diffdyn(model, context, target.shape[1]) - target) ** 2)


def optimiser_diffdyn() -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(CLIP), optax.adam(LEARNING_RATE))


def plain_step(model, opt_state, context, target):
    """The headline step: loss, gradient, clip, Adam."""
    value, grads = eqx.filter_value_and_grad(loss_diffdyn)(model, context, target)
    updates, opt_state = optimiser_diffdyn().update(
        grads, opt_state, eqx.filter(model, eqx.is_inexact_array)
    )
    return eqx.apply_updates(model, updates), opt_state, value


step_diffdyn = eqx.filter_jit(plain_step)


def diffdyn_runner(model, context, target) -> Callable[[], Any]:
    """A function of no arguments running one jitted step and keeping its result."""
    optimiser = optimiser_diffdyn()
    state = {"model": model, "opt": optimiser.init(eqx.filter(model, eqx.is_inexact_array))}

    def run():
        state["model"], state["opt"], value = step_diffdyn(
            state["model"], state["opt"], context, target
        )
        return value

    return run


def core_loss(model, batch, key):
    """`loss_diffdyn` as the core calls it: `loss(module, batch, key)`."""
    del key
    return loss_diffdyn(model, *batch)


def hand_written_steps(model, context, target, steps: int):
    """The hand-written step `steps` times from `model`: the model after it, each loss."""
    opt_state = optimiser_diffdyn().init(eqx.filter(model, eqx.is_inexact_array))
    losses = []
    for _ in range(steps):
        model, opt_state, value = step_diffdyn(model, opt_state, context, target)
        losses.append(float(value))
    return model, losses


def torch_runner(net, trainable, optimiser, context, target) -> Callable[[], Any]:
    horizon = target.shape[1]

    def run():
        optimiser.zero_grad()
        value = ((net(context, horizon) - target) ** 2).mean()
        value.backward()
        nn.utils.clip_grad_norm_(trainable, CLIP)
        optimiser.step()
        return value.detach()

    return run


def agreement(model, size, context_np, target_np) -> dict[str, Any]:
    """Same forecasts, loss, gradients and weights after one clipped Adam step."""
    context, target = jnp.asarray(context_np), jnp.asarray(target_np)
    net, trainable, optimiser = torch_from_diffdyn(model, size)
    context_t, target_t = torch.from_numpy(context_np), torch.from_numpy(target_np)

    forecast = np.asarray(forecast_diffdyn(model, context, size["horizon"]))
    forecast_t = net(context_t, size["horizon"])
    loss_t = ((forecast_t - target_t) ** 2).mean()
    loss_t.backward()
    _, grads = eqx.filter_value_and_grad(loss_diffdyn)(model, context, target)
    loss = float(loss_diffdyn(model, context, target))
    grad_difference = max(
        float(np.max(np.abs(np.asarray(g) - p.grad.numpy().reshape(np.shape(g)))))
        for (_, g, p) in parameter_pairs(grads, net)
    )
    grad_norm = float(optax.global_norm(eqx.filter(grads, eqx.is_inexact_array)))
    nn.utils.clip_grad_norm_(trainable, CLIP)
    optimiser.step()

    # A jit of its own, so that the timed step's first call still includes its compilation.
    stepped, _, _ = eqx.filter_jit(lambda m, o, c, t: plain_step(m, o, c, t))(
        model, optimiser_diffdyn().init(eqx.filter(model, eqx.is_inexact_array)), context, target
    )
    weight_difference = max(
        float(np.max(np.abs(np.asarray(a) - p.detach().numpy().reshape(np.shape(a)))))
        for (_, a, p) in parameter_pairs(stepped, net)
    )
    forecast_difference = float(np.max(np.abs(forecast - forecast_t.detach().numpy())))
    loss_difference = abs(loss - float(loss_t.detach()))
    return {
        "loss_diffdyn": loss,
        "loss_torch": float(loss_t.detach()),
        "loss_abs_difference": loss_difference,
        "forecast_max_abs_difference": forecast_difference,
        "grad_max_abs_difference": grad_difference,
        "grad_global_norm": grad_norm,
        "clipped": grad_norm > CLIP,
        "weights_after_one_step_max_abs_difference": weight_difference,
        "ok": bool(
            forecast_difference < 1e-5
            and loss_difference < 1e-5
            and grad_difference < 1e-5
            and weight_difference < 1e-5
        ),
    }


def data(size: dict[str, int], context_length: int):
    """Windows of a noisy sum of sines (B, C + horizon, d), split into context and target."""
    rng = np.random.default_rng(SEED)
    B, H, d = size["batch"], size["horizon"], size["dim"]
    t = np.arange(context_length + H)[None, :, None] * 0.1
    phase = rng.uniform(0, 2 * np.pi, (B, 1, d))
    series = np.sin(t * np.array([1.0, 1.3, 0.7])[:d] + phase)
    series = (series + 0.05 * rng.standard_normal(series.shape)).astype(np.float32)
    return series[:, :context_length], series[:, context_length:]


def build(size: dict[str, Any], **overrides: Any) -> AttentionEncoderDecoder:
    """diffdyn's model with the registered hyperparameters (hidden width from `size`)."""
    hyper = {**model_spec("seq2seq-attention").defaults, "hidden": size["hidden"]}
    if size["reencode"] is not None:
        hyper["reencode"] = size["reencode"]
    hyper |= overrides
    if hyper["cell"] != "gru" or hyper["score"] != "additive":
        raise ValueError(f"the torch peer is a GRU with the additive score; got {hyper}.")
    return AttentionEncoderDecoder(size["dim"], key=jax.random.key(SEED), **hyper)


def pair_runners(
    model, size, context_np, target_np, label: str = ""
) -> dict[str, Callable[[], Any]]:
    """The diffdyn and torch steps of one configuration, each from the same weights."""
    net, trainable, optimiser = torch_from_diffdyn(model, size)
    return {
        f"diffdyn{label}": diffdyn_runner(model, jnp.asarray(context_np), jnp.asarray(target_np)),
        f"torch{label}": torch_runner(
            net, trainable, optimiser, torch.from_numpy(context_np), torch.from_numpy(target_np)
        ),
    }


def bench(size: dict[str, Any]) -> dict[str, Any]:
    B, C, H, d, hidden = (size[k] for k in ("batch", "context", "horizon", "dim", "hidden"))
    model = build(size)
    plain = build(size, reencode=0)  # the same weights (same key), no re-encoding
    context_np, target_np = data(size, C)
    checks = agreement(model, size, context_np, target_np)
    checks_plain = agreement(plain, size, context_np, target_np)
    for name, check in (("registered", checks), ("reencode=0", checks_plain)):
        if not check["ok"]:
            raise AssertionError(f"diffdyn and torch ({name}) differ: {check}")

    context, target = jnp.asarray(context_np), jnp.asarray(target_np)
    K = size["core_steps"]
    optimiser = optimiser_diffdyn()
    # The registered model as `diffdyn train` trains it without a budget (`train.fit` calls
    # `for_training`): `unroll="auto"` unrolls the decoder's loops for a long run.
    trained = model.for_training(None)
    core, core_last = core_runner(trained, core_loss, (context, target), optimiser, steps=K)
    runners = {"diffdyn_core": core}
    steps = {"diffdyn_core": K}
    core_runs = {"diffdyn_core": core_last}
    # What a budget under 60 s trains (`compare`'s cells): the loops rolled, less to compile.
    rolled = build(size, unroll="off")
    runners["diffdyn_core_rolled"], core_runs["diffdyn_core_rolled"] = core_runner(
        rolled, core_loss, (context, target), optimiser, steps=K
    )
    steps["diffdyn_core_rolled"] = K
    runners |= pair_runners(trained, size, context_np, target_np)
    runners["diffdyn_step"] = runners.pop("diffdyn")
    two = f"diffdyn_core_{DEVICES}_devices"
    if len(jax.devices()) >= DEVICES and B % DEVICES == 0:
        runners[two], core_runs[two] = core_runner(
            trained, core_loss, (context, target), optimiser, steps=K, devices=DEVICES
        )
        steps[two] = K
    runners |= pair_runners(plain, size, context_np, target_np, "_no_reencode")
    runners |= pair_runners(model, size, *data(size, size["long_context"]), "_long")
    forward = eqx.filter_jit(loss_diffdyn)
    runners["diffdyn_forward_only"] = lambda: forward(model, context, target)
    net = torch_from_diffdyn(model, size)[0]
    context_t, target_t = torch.from_numpy(context_np), torch.from_numpy(target_np)

    def torch_forward():
        with torch.no_grad():
            return ((net(context_t, H) - target_t) ** 2).mean()

    runners["torch_forward_only"] = torch_forward

    timings = interleaved(runners, size["rounds"], size["repeats"], steps)
    medians = {name: m["steady_median_s"] for name, m in timings.items()}
    # Every core call starts afresh: its last outcome is K steps from the initial weights.
    reference, losses = hand_written_steps(model, context, target, K)
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
            "diffdyn_median_s": medians[name],
            "diffdyn_compile_s": timings[name]["compile_s"],
            "ratio": medians["torch"] / medians[name],
            "target_met": bool(medians["torch"] / medians[name] >= 3.0),
        }
        for name in ("diffdyn_core", "diffdyn_core_rolled", two, "diffdyn_step")
        if name in medians
    }
    ratio = {
        **{name: v["ratio"] for name, v in variants.items()},
        "no_reencode": medians["torch_no_reencode"] / medians["diffdyn_no_reencode"],
        "context_long": medians["torch_long"] / medians["diffdyn_long"],
        "forward_only": medians["torch_forward_only"] / medians["diffdyn_forward_only"],
        "torch_1_thread": single_medians["torch_1_thread"] / single_medians["diffdyn"],
    }
    return comparison(
        compares=(
            f"one training step (closed-loop MSE over the horizon + gradient + global-norm clip "
            f"{CLIP} + Adam) of the attention encoder-decoder (bidirectional GRU encoder, "
            f"additive attention, GRU decoder, re-encoding every {model.reencode} steps), "
            f"B={B}, context={C}, horizon={H}, d={d}, hidden={hidden} per direction, float32: "
            "diffdyn (AttentionEncoderDecoder, vmap, lax.scan, trained through "
            f"diffdyn.train.train, {K} steps per call, one device) vs the same model in eager "
            "PyTorch (nn.GRU + nn.GRUCell, Python loop over decoder steps)"
        ),
        diffdyn=timings["diffdyn_core"],
        peer=timings["torch"],
        peer_name=f"torch {torch.__version__} eager nn.Module, Python decoder loop, "
        f"{threads} threads",
        ratio_at_least=3.0,
        target="attention seq2seq training step against the same model written in eager "
        "PyTorch with a Python loop over decoder steps: ≥ 3× faster (ratio in one run)",
        settings={
            **{k: size[k] for k in ("batch", "context", "horizon", "dim", "hidden")},
            "hyperparameters": {
                "cell": model.cell,
                "hidden": hidden,
                "score": "additive",
                "attention_width": int(model.score.query_weight.shape[0]),  # type: ignore[union-attr]
                "reencode": model.reencode,
                "unroll": f"{model.unroll}: {trained.unroll} without a budget (headline)",
            },
            "learning_rate": LEARNING_RATE,
            "clip_global_norm": CLIP,
            "torch_num_threads": threads,
            "torch_bias_hh": "zero and frozen (diffdyn's GRU has one bias per gate)",
            "core_steps_per_train_call": K,
            "xla_devices": len(jax.devices()),
            "devices_made_by": None if ONE_DEVICE else f"use_devices({DEVICES})",
        },
        agreement=checks,
        agreement_core=core_checks,
        variants=variants,
        agreement_no_reencode=checks_plain,
        no_reencode={
            "reencode": 0,
            "diffdyn_side": "the hand-written step",
            "diffdyn_median_s": medians["diffdyn_no_reencode"],
            "peer_median_s": medians["torch_no_reencode"],
            "diffdyn_compile_s": timings["diffdyn_no_reencode"]["compile_s"],
            "ratio": ratio["no_reencode"],
            "target_met": bool(ratio["no_reencode"] >= 3.0),
        },
        context_long={
            "context": size["long_context"],
            "diffdyn_side": "the hand-written step",
            "diffdyn_median_s": medians["diffdyn_long"],
            "peer_median_s": medians["torch_long"],
            "diffdyn_compile_s": timings["diffdyn_long"]["compile_s"],
            "ratio": ratio["context_long"],
            "target_met": bool(ratio["context_long"] >= 3.0),
        },
        diagnostics={
            "median_s": medians,
            "ratio_torch_over": ratio,
            "torch_1_thread_median_s": single_medians,
            "variants": {
                "diffdyn_core": f"headline: diffdyn.train.train, one device, {K} steps per call "
                f"(time per step = call / {K})",
                two: f"the core with devices={DEVICES}: the batch split over the host devices",
                "diffdyn_step": "the hand-written filter_jit(value_and_grad + clip + adam), one "
                "call per step: the headline before the core",
                "*_no_reencode": "reencode=0: one encoder pass and 20 decoder steps "
                "(hand-written step)",
                "*_long": f"context of {size['long_context']} steps (hand-written step)",
                "*_forward_only": "loss without gradient (torch under no_grad)",
                "torch_1_thread": "the torch step with torch.set_num_threads(1), timed "
                "after the others, interleaved with diffdyn_core again",
            },
            "all_timings": timings,
        },
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    record = bench(QUICK if args.quick else FULL)
    record["quick"] = args.quick
    if args.out is not None or not (args.quick or ONE_DEVICE):
        print(f"wrote {write_result('attention_seq2seq_step', record, args.out)}")
    print_table(
        "attention seq2seq training step (float32)" + (" — quick" if args.quick else ""),
        {"attention_seq2seq_step": record},
    )
    for name, ratio in record["diagnostics"]["ratio_torch_over"].items():
        print(f"torch / diffdyn, {name}: {ratio:.3g}×")
    for name, median in record["diagnostics"]["median_s"].items():
        print(f"{name}: {1e3 * median:.3g} ms")
    print(f"agreement: {record['agreement']}")
    print(f"agreement (reencode=0): {record['agreement_no_reencode']}")
    for name, check in record["agreement_core"].items():
        print(f"agreement {name} (core vs hand-written, {check['steps']} steps): {check}")


if __name__ == "__main__":
    main()
