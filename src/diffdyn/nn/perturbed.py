"""Perturbed optimisers and their Fenchel–Young loss (Berthet et al. 2020).

Berthet, Blondel, Teboul, Cuturi, Vert & Bach, "Learning with differentiable perturbed
optimizers", NeurIPS 2020. A discrete maximiser y*(θ) = argmax_{y ∈ C} ⟨y, θ⟩ (one-hot argmax,
ranking) has zero derivative almost everywhere; its perturbed version

    y*_σ(θ) = E_Z[ y*(θ + σZ) ]                                 (paper eq. 1)

is smooth, and its Jacobian has the score-function form E[y*(θ + σZ) ∇log μ(Z)ᵀ] / σ
(paper Prop. 3.1), which needs values of y* only. With Gumbel noise, the perturbed one-hot
argmax is exactly softmax(θ/σ) (the Gumbel-max trick).

What `optax.perturbations` gives and what it does not:

- `optax.perturbations.make_perturbed_fun` is the Monte-Carlo y*_σ with that score-function
  derivative (with a baseline): `perturbed_argmax` and `perturbed_ranks` are built on it.
- it has no Fenchel–Young loss, whose gradient is y*_σ(θ) − y (paper Prop. 4.1): no
  derivative of y*_σ is needed, so training with it avoids the score function's variance.
  `fenchel_young_loss` is written here (Danskin's theorem: the gradient of
  max_y ⟨y, θ + σZ⟩ is the maximiser).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import jax
import jax.numpy as jnp
import optax.perturbations
import optax.tree
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..errors import DiffdynError, did_you_mean

NOISES = {"gumbel": optax.perturbations.Gumbel, "normal": optax.perturbations.Normal}
KINDS = ("argmax", "ranks")


def one_hot_argmax(theta: Float[Array, " n"]) -> Float[Array, " n"]:
    """The maximiser of ⟨y, θ⟩ over the one-hot vectors (the simplex's vertices)."""
    return jax.nn.one_hot(jnp.argmax(theta), theta.shape[0], dtype=theta.dtype)


def hard_ranks(theta: Float[Array, " n"]) -> Float[Array, " n"]:
    """The maximiser of ⟨y, θ⟩ over the permutations of (1, …, n): the ascending ranks."""
    return (jnp.argsort(jnp.argsort(theta)) + 1).astype(theta.dtype)


def _check(sigma: float, num_samples: int, noise: str) -> None:
    if not (isinstance(sigma, int | float) and sigma > 0):
        raise DiffdynError(f"the noise scale sigma must be a positive number; got {sigma!r}.")
    if not (isinstance(num_samples, int) and num_samples >= 1):
        raise DiffdynError(f"num_samples must be a whole number ≥ 1; got {num_samples!r}.")
    if noise not in NOISES:
        raise DiffdynError(
            f"unknown noise {noise!r}; choose one of {', '.join(NOISES)}."
            f"{did_you_mean(noise, list(NOISES))}"
        )


def _perturbed(maximiser: Callable, theta, key, sigma, num_samples, noise) -> Array:
    _check(sigma, num_samples, noise)
    theta = jnp.asarray(theta)
    if theta.ndim != 1:
        raise DiffdynError(f"expected one vector θ; got shape {theta.shape} (batch with vmap).")
    fun = optax.perturbations.make_perturbed_fun(
        maximiser, num_samples=num_samples, sigma=sigma, noise=NOISES[noise]()
    )
    return cast(Array, fun(key, theta))  # a pytree like `theta`: one array


def perturbed_argmax(
    theta: Float[ArrayLike, " n"],
    *,
    key: PRNGKeyArray,
    sigma: float = 1.0,
    num_samples: int = 1000,
    noise: str = "gumbel",
) -> Float[Array, " n"]:
    """The perturbed one-hot argmax y*_σ(θ) = E[one_hot(argmax(θ + σZ))], a Monte-Carlo
    estimate over `num_samples` draws (`optax.perturbations.make_perturbed_fun`; its derivative
    is the score-function estimate of Berthet et al. 2020, Prop. 3.1).

    With Gumbel noise its expectation is softmax(θ/σ).

    **Arguments:**

    - `theta`: scores `[n]`.
    - `key`: the noise's key.
    - `sigma`: the noise scale σ > 0 (the temperature).
    - `num_samples`: Monte-Carlo draws.
    - `noise`: `"gumbel"` or `"normal"`.

    **Returns:** a vector of the simplex `[n]`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import perturbed_argmax

    theta = jnp.array([1.0, 0.0, -1.0])
    perturbed_argmax(theta, key=jax.random.key(0), num_samples=10000)  # ≈ softmax(theta)
    ```
    """
    return _perturbed(one_hot_argmax, theta, key, sigma, num_samples, noise)


def perturbed_ranks(
    theta: Float[ArrayLike, " n"],
    *,
    key: PRNGKeyArray,
    sigma: float = 1.0,
    num_samples: int = 1000,
    noise: str = "normal",
) -> Float[Array, " n"]:
    """Perturbed ascending ranks E[rank(θ + σZ)] (the perturbed maximiser over the
    permutahedron of (1, …, n); Berthet et al. 2020, §5), a Monte-Carlo estimate with the
    score-function derivative of `optax.perturbations.make_perturbed_fun`.

    As σ → 0 they are the hard ranks; as σ → ∞ each tends to (n + 1)/2.

    **Arguments:** as `perturbed_argmax` (default noise: `"normal"`).

    **Returns:** the perturbed ranks `[n]` (1 = smallest).
    """
    return _perturbed(hard_ranks, theta, key, sigma, num_samples, noise)


def fenchel_young_loss(
    theta: Float[ArrayLike, " n"],
    target: Float[ArrayLike, " n"],
    *,
    key: PRNGKeyArray,
    kind: str = "argmax",
    sigma: float = 1.0,
    num_samples: int = 1000,
    noise: str | None = None,
) -> Float[Array, ""]:
    """The perturbed Fenchel–Young loss of scores θ for a target y (Berthet et al. 2020, §4):

        L̂(θ; y) = (1/M) Σᵢ [ max_{y'} ⟨y', θ + σZᵢ⟩ − ⟨y, θ + σZᵢ⟩ ],   ∇L̂ = ŷ*_σ(θ) − y.

    It differs from the paper's F_σ(θ) + Ω(y) − ⟨θ, y⟩ by a constant in θ (Ω(y) and
    σ⟨y, E Z⟩), so every term is ≥ 0 and the loss is 0 only when y is the maximiser for every
    draw. The gradient is exact for the drawn noise (Danskin's theorem), with the same draws as
    `perturbed_argmax` / `perturbed_ranks` for the same key.

    **Arguments:**

    - `theta`: scores `[n]`.
    - `target`: a one-hot vector (`kind="argmax"`) or ranks 1..n (`kind="ranks"`) `[n]`.
    - `key`, `sigma`, `num_samples`: as `perturbed_argmax`.
    - `kind`: `"argmax"` or `"ranks"`.
    - `noise`: `"gumbel"` or `"normal"` (default: Gumbel for argmax, normal for ranks).

    **Returns:** a scalar.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import fenchel_young_loss

    theta, y = jnp.array([1.0, 0.0, -1.0]), jnp.array([0.0, 1.0, 0.0])
    jax.grad(fenchel_young_loss)(theta, y, key=jax.random.key(0))  # ŷ*_σ(θ) − y
    ```
    """
    if kind not in KINDS:
        raise DiffdynError(
            f"unknown maximiser kind {kind!r}; choose one of {', '.join(KINDS)}."
            f"{did_you_mean(kind, list(KINDS))}"
        )
    noise = noise or ("gumbel" if kind == "argmax" else "normal")
    _check(sigma, num_samples, noise)
    theta, target = jnp.asarray(theta), jnp.asarray(target, dtype=jnp.result_type(theta))
    if theta.ndim != 1 or theta.shape != target.shape:
        raise DiffdynError(
            f"theta and target must be vectors of one length; got {theta.shape} and "
            f"{target.shape}."
        )
    maximiser = one_hot_argmax if kind == "argmax" else hard_ranks
    sampler = NOISES[noise]().sample
    # The draws of optax.perturbations.make_perturbed_fun for this key, so that the gradient
    # below is exactly `perturbed_argmax(...) − target` for the same key.
    keys = jax.random.split(key, num_samples)
    # `random_like` gives a pytree like `theta`: here one array.
    z = cast(Array, jax.vmap(lambda k: optax.tree.random_like(k, theta, sampler=sampler))(keys))
    shifted = theta[None, :] + sigma * z  # [M, n]
    best = jax.lax.stop_gradient(jax.vmap(maximiser)(shifted))
    return jnp.mean(jnp.sum((best - target[None, :]) * shifted, axis=-1))
