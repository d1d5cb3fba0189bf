"""Pattern completion (Miconi, Clune & Stanley 2018, sec. 4.1): remember patterns seen once.

Each episode draws `n` random binary patterns of ±1 (`pattern_size` bits) and shows them in
turn — each for `show_steps` steps followed by `gap_steps` steps of zero input, the whole set
`presentations` times in a fresh random order each time — then shows one of them with half its
bits set to zero for `test_steps` steps. The network must output the full pattern at the last
step. Nothing about the patterns is known before the episode: a network can only solve it by
storing them as it sees them — with plastic connections, in its Hebbian traces.

The defaults are Miconi et al.'s: each pattern shown for 6 steps with 4-step gaps, the test
for 6 steps (`show_steps=6, gap_steps=4, test_steps=6`; T = 106 steps for 5 patterns). Shorter
presentations (3 steps, 2-step gaps) halve the cost of an episode, but the plastic network
then stalled at 3-5 % sign error: the last pattern shown, still active at the test, competes
with the one to complete (docs/plasticity.md).

The batch is a `MemoryTask` (as the algorithmic tasks'): `inputs [B, T, N]` (±1 and 0),
`targets [B, T, N]` (the full pattern as bits in {0, 1} at the scored step, 0 elsewhere),
`mask [B, T]` (1 at the last test step), `lengths [B]` (the number of patterns). Episodes with
fewer patterns than `max_patterns` end earlier and are padded with zero input after the test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ..errors import DiffdynError
from ..nn.plasticity import PlasticNetwork
from .algorithmic import MemoryTask


def pattern_completion_task(
    key: PRNGKeyArray,
    batch: int,
    *,
    pattern_size: int = 1000,
    min_patterns: int = 5,
    max_patterns: int = 5,
    presentations: int = 2,
    show_steps: int = 6,
    gap_steps: int = 4,
    test_steps: int = 6,
) -> MemoryTask:
    """A batch of pattern-completion episodes (see the module docstring).

    **Example:**

    ```python
    import jax
    from diffdyn.tasks.pattern_completion import pattern_completion_task

    task = pattern_completion_task(jax.random.key(0), 2, pattern_size=8)
    task.inputs.shape, task.mask.sum(axis=1)  # (2, 106, 8), [1., 1.]
    ```
    """
    if pattern_size < 2:
        raise DiffdynError(
            f"pattern_size must be at least 2 (half of the bits are erased); got {pattern_size}."
        )
    if not 1 <= min_patterns <= max_patterns:
        raise DiffdynError(
            "patterns must satisfy 1 <= min_patterns <= max_patterns; got "
            f"{min_patterns} and {max_patterns}."
        )
    if min(presentations, show_steps, test_steps) < 1 or gap_steps < 0:
        raise DiffdynError(
            "presentations, show_steps and test_steps must be at least 1 and gap_steps at "
            f"least 0; got {presentations}, {show_steps}, {test_steps} and {gap_steps}."
        )
    block = show_steps + gap_steps
    steps = presentations * max_patterns * block + test_steps
    time = jnp.arange(steps)
    k_n, k_rest = jax.random.split(key)
    counts = jax.random.randint(k_n, (batch,), min_patterns, max_patterns + 1)

    def one(key, count):
        k_bits, k_order, k_pick, k_erase = jax.random.split(key, 4)
        patterns = 2.0 * jax.random.bernoulli(k_bits, 0.5, (max_patterns, pattern_size)) - 1.0
        # A fresh random order of the episode's `count` patterns in every presentation.
        draw = jax.random.uniform(k_order, (presentations, max_patterns))
        order = jnp.argsort(jnp.where(jnp.arange(max_patterns) < count, draw, 2.0), axis=1)
        cycle_length = count * block
        cycle = jnp.clip(time // cycle_length, 0, presentations - 1)
        slot = jnp.clip((time % cycle_length) // block, 0, max_patterns - 1)
        in_cycles = time < presentations * cycle_length
        showing = in_cycles & ((time % cycle_length) % block < show_steps)
        inputs = jnp.where(showing[:, None], patterns[order[cycle, slot]], 0.0)
        target = patterns[jax.random.randint(k_pick, (), 0, count)]
        kept = jax.random.permutation(k_erase, pattern_size) < pattern_size - pattern_size // 2
        test_start = presentations * cycle_length
        testing = (time >= test_start) & (time < test_start + test_steps)
        inputs = jnp.where(testing[:, None], jnp.where(kept, target, 0.0), inputs)
        scored = time == test_start + test_steps - 1
        targets = jnp.where(scored[:, None], (target + 1) / 2, 0.0)
        return inputs, targets, scored.astype(jnp.float32)

    inputs, targets, mask = jax.vmap(one)(jax.random.split(k_rest, batch), counts)
    return MemoryTask(inputs, targets, mask, counts)


def plastic_network(
    n_in: int,
    n_out: int,
    *,
    key: PRNGKeyArray,
    neurons: int = 0,
    eta: float = 0.01,
    input_gain: float = 20.0,
) -> PlasticNetwork:
    """`--model plastic`: Miconi et al.'s fully recurrent plastic network (`PlasticNetwork`),
    one neuron per bit unless `neurons` says more; w, α and η are trained."""
    return PlasticNetwork(
        n_in, n_out, key=key, neurons=neurons, eta=eta, input_gain=input_gain, plastic=True
    )


def recurrent_network(
    n_in: int, n_out: int, *, key: PRNGKeyArray, neurons: int = 0, input_gain: float = 20.0
) -> PlasticNetwork:
    """`--model rnn`: the same network without plasticity (α = 0), trained the same way."""
    return PlasticNetwork(
        n_in, n_out, key=key, neurons=neurons, input_gain=input_gain, plastic=False
    )
