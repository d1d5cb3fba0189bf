"""Control through differentiable simulators: policies trained by gradients through the
closed-loop simulation of a controlled system (`docs/control.md`)."""

from .cost import Cost as Cost
from .job import (
    control_to_folder as control_to_folder,
    load_controller as load_controller,
    policy_recipe as policy_recipe,
)
from .plot import (
    animate as animate,
    plot_cost as plot_cost,
    plot_trajectories as plot_trajectories,
)
from .policy import (
    LinearPolicy as LinearPolicy,
    MLPPolicy as MLPPolicy,
    policy_parameters as policy_parameters,
    saturate as saturate,
)
from .result import (
    ControlEvaluation as ControlEvaluation,
    ControlResult as ControlResult,
    CostPoint as CostPoint,
)
from .rollout import Rollout as Rollout, rollout as rollout
from .tasks import (
    TASKS as TASKS,
    ControlTask as ControlTask,
    HoldAngle as HoldAngle,
    InitialStates as InitialStates,
    NearTarget as NearTarget,
    TaskDefaults as TaskDefaults,
    Tracking as Tracking,
    make_task as make_task,
    supported_systems as supported_systems,
    task_name as task_name,
)
from .training import (
    POLICIES as POLICIES,
    RolloutCost as RolloutCost,
    evaluate_controller as evaluate_controller,
    make_policy as make_policy,
    train_controller as train_controller,
)
