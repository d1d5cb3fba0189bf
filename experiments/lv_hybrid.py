"""Lotka–Volterra with a network inside: the universal differential equation of Rackauckas et
al. 2020 ("Universal Differential Equations for Scientific Machine Learning", §2.1), and the
plain neural ODE it is compared with.

The file is a user's system file: `diffdyn simulate experiments/lv_hybrid.py:HybridLotkaVolterra`,
`diffdyn identify experiments/lv_hybrid.py:HybridLotkaVolterra --fit net ...` and
`diffdyn discover DIR --term net --system experiments/lv_hybrid.py:HybridLotkaVolterra` take it
(`docs/identify.md`); so do the `Paper...` classes below.

- `HybridLotkaVolterra`: dx/dt = αx + NN(x, y)₁, dy/dt = −δy + NN(x, y)₂ — the growth of
  the prey and the death of the predators are known (α = 1.3, δ = 1.8), the interaction
  (truly −βxy and +γxy) is left to the network.
- `NeuralLotkaVolterra`: dx/dt, dy/dt = NN(x, y) — nothing known.

`HybridLotkaVolterra` and `NeuralLotkaVolterra` use an `eqx.nn.MLP` 2 → 4 → 2 with tanh
(22 weights: the first attempt's choice, when `identify` refused more weights than observed
values). `PaperHybridLotkaVolterra` and `PaperNeuralLotkaVolterra` use the paper's network,
2 → 5 → 5 → 5 → 2 with the radial basis activation exp(−h²): 87 weights, more than the 62
observed values (31 samples of 2 variables), which `identify` now fits as an
over-parametrised network; `experiments/ude_lotka_volterra.py` fits those.
The weights are drawn once from a fixed key (`NETWORK_SEED`) so that the class builds the
same from its defaults (what saving a fitted system needs).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from diffdyn.systems import AbstractFlow, param

NETWORK_SEED = 0
WIDTH, DEPTH = 4, 1  # 2 → 4 → 2


def _network() -> eqx.nn.MLP:
    return eqx.nn.MLP(2, 2, width_size=WIDTH, depth=DEPTH, activation=jax.nn.tanh,
                      key=jax.random.key(NETWORK_SEED))  # fmt: skip


class HybridLotkaVolterra(AbstractFlow):
    """dx/dt = αx + NN(x, y)₁, dy/dt = −δy + NN(x, y)₂: the known growth and decay of
    Lotka–Volterra, and a network for the interactions (Rackauckas et al. 2020, §2.1)."""

    y0 = (0.44249296, 4.6280594)
    variable_names = ("prey", "predator")
    dt = 0.1
    alpha: Float[Array, ""] = param(1.3)
    delta: Float[Array, ""] = param(1.8)
    net: eqx.nn.MLP = eqx.field(default_factory=_network)  # a default: it can be saved

    def vector_field(self, t, state):
        prey, predator = state
        known = jnp.stack([self.alpha * prey, -self.delta * predator])
        return known + self.net(state)


class NeuralLotkaVolterra(AbstractFlow):
    """dx/dt, dy/dt = NN(x, y): a plain neural ODE on the same variables (no known term)."""

    y0 = (0.44249296, 4.6280594)
    variable_names = ("prey", "predator")
    dt = 0.1
    net: eqx.nn.MLP = eqx.field(default_factory=_network)

    def vector_field(self, t, state):
        return self.net(state)


# -- the paper's network ---------------------------------------------------------------------
PAPER_WIDTH, PAPER_DEPTH = 5, 3  # 2 → 5 → 5 → 5 → 2: 87 weights


def rbf(x):
    """The radial basis activation exp(−x²) of Rackauckas et al. 2020 (§2.1)."""
    return jnp.exp(-(x**2))


def _paper_network() -> eqx.nn.MLP:
    return eqx.nn.MLP(2, 2, width_size=PAPER_WIDTH, depth=PAPER_DEPTH, activation=rbf,
                      key=jax.random.key(NETWORK_SEED))  # fmt: skip


class PaperHybridLotkaVolterra(HybridLotkaVolterra):
    """`HybridLotkaVolterra` with the paper's network: 2 → 5 → 5 → 5 → 2, activation exp(−x²),
    87 weights — more than the 62 observed values, which `identify` fits as an
    over-parametrised network (`Identification.notes`)."""

    net: eqx.nn.MLP = eqx.field(default_factory=_paper_network)


class PaperNeuralLotkaVolterra(NeuralLotkaVolterra):
    """`NeuralLotkaVolterra` with the paper's network (the same 87 weights)."""

    net: eqx.nn.MLP = eqx.field(default_factory=_paper_network)
