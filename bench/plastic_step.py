"""One training step of the plastic pattern-completion network: diffdyn against eager PyTorch.

The model (Miconi et al. 2018, sec. 4.1; tutorial eqs. 12–13): N = 1000 tanh neurons, fully
connected by plastic connections, z_t = (w + α ⊙ H_{t−1}) y_{t−1} + 20 x_t, y_t = tanh(z_t),
H_t = η y_t y_{t−1}ᵀ + (1 − η) H_{t−1}; w, α (N × N) and η trained. One step = one episode of
the pattern-completion task (5 patterns of 1000 bits, each shown 3 steps with 2-step gaps,
twice, then the half-erased test for 6 steps: T = 56, half the task's default of Miconi et
al.'s 6-step presentations with 4-step gaps, T = 106, to halve the cost of the run; the cost
per time step is the same), batch 1 (as Miconi et al. and `--model plastic`), sigmoid
cross-entropy of the logits 2 z_t against the full pattern at the last step, gradient,
global-norm clipping (10) and Adam (1e-3), float32.

- diffdyn (`diffdyn_core`, the headline): `diffdyn.nn.PlasticNetwork` — the episode in a
  `lax.scan` with the hand-written reverse pass of `nn.plastic_episode` (traces stored every
  √T steps and recomputed) — trained through the core, `diffdyn.train.train`, a few steps
  per call (time per step = call / steps).
- peer: the same network as a PyTorch user writes it (Miconi et al.'s reference code has this
  shape): tensors with `requires_grad`, a Python `for` loop over the episode's steps, eager
  autograd (which keeps every step's N × N trace), `clip_grad_norm_` + `torch.optim.Adam`,
  PyTorch's default threads (recorded).

The torch side starts from diffdyn's weights; `agreement` checks that both give the same loss
and gradients before anything is timed. Target: ratio = torch / diffdyn ≥ 3.0; the sides are
interleaved so that changes of machine load hit both alike.

Run `python bench/plastic_step.py` (writes `bench/results/plastic_step.json`), or `--quick`
for a smoke test at small sizes that writes nothing unless `--out DIR` is given.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax
import torch

from diffdyn.nn import PlasticNetwork
from diffdyn.tasks.algorithmic import MemoryTask
from diffdyn.tasks.pattern_completion import pattern_completion_task
from diffdyn.tasks.runner import _bits_loss

sys.path.insert(0, str(Path(__file__).parent))
from _harness import (  # noqa: E402
    comparison,
    core_runner,
    interleaved,
    medians,
    parse_arguments,
    print_table,
    write_result,
)

FULL = {"pattern_size": 1000, "patterns": 5, "rounds": 2, "repeats": 2, "core_steps": 4}
QUICK = {"pattern_size": 64, "patterns": 3, "rounds": 2, "repeats": 2, "core_steps": 2}
LEARNING_RATE = 1e-3  # the runner's default for --model plastic
CLIP = 10.0  # the task runner's global-norm clip
GAIN = 20.0


def core_loss(net, batch, key):
    del key
    return _bits_loss(net, MemoryTask(*batch, lengths=None))


def torch_loss(w, alpha, eta, inputs, targets, mask):
    """The same episode and loss, eagerly: `inputs [T, N]`, `targets [T, N]`, `mask [T]`."""
    n = w.shape[0]
    y, trace = inputs.new_zeros(n), inputs.new_zeros(n, n)
    rate = eta.clamp(0.0, 1.0)
    logits = []
    for x in GAIN * inputs:
        z = (w + alpha * trace) @ y + x
        y_new = torch.tanh(z)
        trace = rate * torch.outer(y_new, y) + (1 - rate) * trace
        y = y_new
        logits.append(2 * z)
    logits = torch.stack(logits)
    per_bit = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, targets, reduction="none"
    )
    return (per_bit.sum(-1) * mask).sum() / mask.sum().clamp(min=1.0)


def bench(size: dict[str, Any]) -> dict[str, Any]:
    n, patterns = size["pattern_size"], size["patterns"]
    task = pattern_completion_task(jax.random.key(1), 1, pattern_size=n,
                                   min_patterns=patterns, max_patterns=patterns,
                                   show_steps=3, gap_steps=2)  # fmt: skip
    batch = (task.inputs, task.targets, task.mask)
    net = PlasticNetwork(n, n, key=jax.random.key(0))
    optimiser = optax.chain(optax.clip_by_global_norm(CLIP), optax.adam(LEARNING_RATE))

    params = [torch.tensor(np.asarray(a)).requires_grad_() for a in (net.weight, net.alpha)]
    params.append(torch.tensor(float(net.eta)).requires_grad_())
    data = [torch.tensor(np.asarray(a[0])) for a in batch]
    torch_optimiser = torch.optim.Adam(params, lr=LEARNING_RATE)

    # Agreement: the same loss and gradients from the same weights and episode.
    value, grads = eqx.filter_jit(eqx.filter_value_and_grad(core_loss))(net, batch, None)
    loss_t = torch_loss(*params, *data)
    loss_t.backward()
    pairs = zip((grads.weight, grads.alpha, grads.eta), (p.grad for p in params))
    gradient_error = max(
        float(np.max(np.abs(np.asarray(a) - b.numpy())) / (np.max(np.abs(b.numpy())) + 1e-30))
        for a, b in pairs
    )
    checks = {"loss_diffdyn": float(value), "loss_torch": loss_t.item(),
              "gradient_max_relative_difference": gradient_error}  # fmt: skip
    checks["ok"] = bool(abs(checks["loss_diffdyn"] - checks["loss_torch"]) < 1e-3 * abs(
        checks["loss_torch"]) + 1e-5 and gradient_error < 1e-3)  # fmt: skip
    if not checks["ok"]:
        raise AssertionError(f"diffdyn and torch differ: {checks}")

    def torch_step():
        torch_optimiser.zero_grad()
        loss = torch_loss(*params, *data)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        torch_optimiser.step()
        return loss.item()

    K = size["core_steps"]
    core, _ = core_runner(net, core_loss, batch, optimiser, steps=K)
    forward = eqx.filter_jit(core_loss)

    def torch_forward():
        with torch.no_grad():
            return torch_loss(*params, *data).item()

    runners = {
        "diffdyn_core": core,
        "torch": torch_step,
        "diffdyn_forward_only": lambda: forward(net, batch, None),
        "torch_forward_only": torch_forward,
    }
    timings = interleaved(runners, size["rounds"], size["repeats"], {"diffdyn_core": K})
    times = medians(timings)
    threads = torch.get_num_threads()
    steps = task.inputs.shape[1]
    return comparison(
        compares=(
            f"one training step (episode forward + backward + clip {CLIP} + Adam) of the "
            f"fully recurrent plastic network of Miconi et al. 2018 ({n} neurons, w, α, η "
            f"trained) on one pattern-completion episode ({patterns} patterns of {n} bits, "
            f"T={steps}), float32: diffdyn (nn.PlasticNetwork, hand-written reverse pass, "
            f"trained through diffdyn.train.train, {K} steps per call) vs the same network in "
            "eager PyTorch (Python loop over the episode, autograd)"
        ),
        diffdyn=timings["diffdyn_core"],
        peer=timings["torch"],
        peer_name=f"torch {torch.__version__} eager, Python time loop, {threads} threads",
        ratio_at_least=3.0,
        target="plastic network training step (pattern completion sizes) >= 3x the same "
        "network in eager PyTorch",
        settings={
            "pattern_size": n,
            "patterns": patterns,
            "time_steps": steps,
            "batch": 1,
            "learning_rate": LEARNING_RATE,
            "clip_global_norm": CLIP,
            "torch_num_threads": threads,
            "core_steps_per_train_call": K,
        },  # fmt: skip
        agreement=checks,
        diagnostics={
            "median_s": times,
            "ratio_forward_only": times["torch_forward_only"] / times["diffdyn_forward_only"],
            "all_timings": timings,
        },
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    record = bench(QUICK if args.quick else FULL)
    record["quick"] = args.quick
    if args.out is not None or not args.quick:
        print(f"wrote {write_result('plastic_step', record, args.out)}")
    print_table("plastic network training step (float32)" + (" — quick" if args.quick else ""),
                {"plastic_step": record})  # fmt: skip
    print(f"forward only, torch / diffdyn: {record['diagnostics']['ratio_forward_only']:.3g}×")
    print(f"agreement: {record['agreement']}")


if __name__ == "__main__":
    main()
