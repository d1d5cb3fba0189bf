"""Dynamical systems: the catalogue, the abstract kinds to write your own, and `simulate`."""

from ..options import parse_assignments as parse_assignments  # also importable from here
from .base import AbstractSystem as AbstractSystem, param as param
from .cartpole import CartPole as CartPole
from .chua import Chua as Chua
from .controlled import (
    AbstractControlledFlow as AbstractControlledFlow,
    AbstractControlledMap as AbstractControlledMap,
    check_controlled as check_controlled,
    is_controlled as is_controlled,
)
from .delay import AbstractDelayFlow as AbstractDelayFlow
from .double_pendulum import DoublePendulum as DoublePendulum
from .duffing import Duffing as Duffing
from .flow import AbstractFlow as AbstractFlow, rk4_step as rk4_step
from .henon import Henon as Henon
from .ikeda import Ikeda as Ikeda
from .kuramoto_sivashinsky import KuramotoSivashinsky as KuramotoSivashinsky
from .logistic import Logistic as Logistic
from .lorenz63 import Lorenz63 as Lorenz63
from .lorenz63_control import Lorenz63Control as Lorenz63Control
from .lorenz96 import Lorenz96 as Lorenz96
from .lotka_volterra import LotkaVolterra as LotkaVolterra
from .mackey_glass import MackeyGlass as MackeyGlass
from .map import AbstractMap as AbstractMap
from .narma import Narma10 as Narma10
from .pde import AbstractSemilinearPDE as AbstractSemilinearPDE
from .pendulum import Pendulum as Pendulum
from .registry import (
    SYSTEMS as SYSTEMS,
    get_system as get_system,
    register_system as register_system,
    system_class as system_class,
)
from .rossler import Rossler as Rossler
from .simulate import simulate as simulate
from .van_der_pol import VanDerPol as VanDerPol
