"""The one optimisation core, `diffdyn.train.train`, on modules that are not forecasters."""

import functools
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffdyn.errors import DiffdynError
from diffdyn.systems import Henon
from diffdyn.train import Recipe, TrainingError, load_module, save_module, schedule, train
from diffdyn.train.checkpoint import deserialise
from diffdyn.train.loop import LARGE_LEAF, _where

OBSERVED = 24  # one-step pairs of the Hénon map seen by the identification test


@functools.cache
def henon_pairs():
    """Consecutive states of the true Hénon map (a = 1.4, b = 0.3)."""
    true, state, states = Henon(), jnp.asarray([0.1, 0.1]), []
    for _ in range(OBSERVED + 100):
        state = true.step(state, None)
        states.append(state)
    states = jnp.stack(states[100:])
    return states[:-1], states[1:]


class PairBatches(eqx.Module):
    """Minibatches of one-step pairs (x_n, x_{n+1}), drawn on device."""

    before: jax.Array
    after: jax.Array

    def __call__(self, key, step, progress):
        pick = jax.random.randint(key, (8,), 0, self.before.shape[0])
        return self.before[pick], self.after[pick]


def one_step_loss(system, batch, key):
    before, after = batch
    return jnp.mean((jax.vmap(lambda s: system.step(s, None))(before) - after) ** 2)


ADAM = optax.adam(0.05)  # one object: every run below shares one compiled step


def identify_henon(steps, **options):
    start = Henon(a=1.2)  # the parameter a is a field: train fits it like a weight
    return train(start, one_step_loss, PairBatches(*henon_pairs()), ADAM,
                 key=jax.random.key(3), steps=steps, progress=False, **options)  # fmt: skip


def test_a_system_parameter_is_identified_through_the_core():
    outcome = identify_henon(400)
    assert abs(float(outcome.module.a) - 1.4) < 1e-3
    assert abs(float(outcome.module.b) - 0.3) < 1e-3
    assert outcome.steps == 400 and outcome.finished


def test_a_flat_optimiser_takes_the_same_steps_as_the_tree_one():
    # Clipping by global norm + Adam treat every element alike: one flat vector or a tree of
    # arrays is the same optimisation, to float32 rounding (the norm's sum is ordered apart).
    chain = optax.chain(optax.clip_by_global_norm(0.01), optax.adam(0.05))  # clipping acts
    runs = [
        train(Henon(a=1.2), one_step_loss, PairBatches(*henon_pairs()), chain,
              key=jax.random.key(3), steps=60, progress=False, flat_optimiser=flat)
        for flat in (False, True)
    ]  # fmt: skip
    tree, flat = (run.module for run in runs)
    assert float(tree.a) != 1.2  # it moved
    np.testing.assert_allclose(float(flat.a), float(tree.a), rtol=1e-5)
    np.testing.assert_allclose(float(flat.b), float(tree.b), rtol=1e-5)
    np.testing.assert_allclose(
        [h.loss for h in runs[1].history], [h.loss for h in runs[0].history], rtol=1e-4
    )


class AllPairs(eqx.Module):
    """Every one-step pair, every step: a deterministic objective (what a line search needs)."""

    before: jax.Array
    after: jax.Array

    def __call__(self, key, step, progress):
        return self.before, self.after


@pytest.mark.parametrize("flat", [False, True])
def test_a_line_search_optimiser_gets_its_extra_arguments(flat):
    # optax.lbfgs is a GradientTransformationExtraArgs: its zoom line search calls value_fn.
    # Adam at the same step count leaves a far from the truth; L-BFGS lands on it.
    outcome = train(Henon(a=1.2, b=0.25), one_step_loss, AllPairs(*henon_pairs()),
                    optax.lbfgs(), key=jax.random.key(3), steps=25, progress=False,
                    flat_optimiser=flat)  # fmt: skip
    assert abs(float(outcome.module.a) - 1.4) < 1e-4
    assert abs(float(outcome.module.b) - 0.3) < 1e-4
    adam = identify_henon(25)
    assert abs(float(adam.module.a) - 1.4) > 1e-2


def test_a_killed_system_run_resumes_bit_for_bit(tmp_path):
    full = identify_henon(200, validate_every=50)

    def killed_after_the_second_checkpoint(state):
        if state.step == 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        identify_henon(200, validate_every=50, checkpoint=tmp_path,
                       on_validation=killed_after_the_second_checkpoint)  # fmt: skip
    resumed = identify_henon(200, validate_every=50, checkpoint=tmp_path, resume=True)
    assert resumed.steps == 200
    np.testing.assert_array_equal(np.asarray(resumed.module.a), np.asarray(full.module.a))
    np.testing.assert_array_equal(np.asarray(resumed.module.b), np.asarray(full.module.b))
    assert [r.loss for r in resumed.history] == [r.loss for r in full.history]


class Progress(eqx.Module):
    """The batch is the run progress at the step: with SGD at rate ½ on (w − p)², w ends as
    the progress of the last step."""

    def __call__(self, key, step, progress):
        return progress


def test_a_budget_run_reaches_the_end_of_its_schedule():
    cosine = schedule.cosine(warmup=0.1, final=0.05)

    def loss(w, progress, key):
        return (w - progress) ** 2

    outcome = train(jnp.asarray(0.0), loss, Progress(), optax.sgd(0.5), key=jax.random.key(0),
                    budget=1.5, progress=False)  # fmt: skip
    last_progress = float(outcome.module)
    assert 0.95 <= last_progress <= 1.0 and outcome.steps > 20
    assert float(cosine(jnp.asarray(last_progress))) == pytest.approx(0.05, abs=0.01)
    assert outcome.history[-1].progress == pytest.approx(1.0, abs=0.05)
    assert "budget" in outcome.stop_reason and not outcome.finished


@pytest.mark.parametrize("size", [3, LARGE_LEAF])  # the guard's lax.cond, and its jnp.where
def test_a_forced_nan_stops_with_a_clear_error_and_writes_nothing(tmp_path, size):
    def loss(w, batch, key):
        return jnp.sum(w) * jnp.nan

    with pytest.raises(TrainingError, match="diverged.*smaller learning rate"):
        train(jnp.ones(size), loss, Progress(), optax.adam(1e-2), key=jax.random.key(0),
              steps=100, checkpoint=tmp_path / "state", progress=False)  # fmt: skip
    # What was saved for a resume is the last finite module: the guard never let NaN in.
    module, best, _ = deserialise(tmp_path / "state" / "state.eqx", (jnp.ones(size),) * 2 + (
        optax.adam(1e-2).init(jnp.ones(size)),))  # fmt: skip
    np.testing.assert_array_equal(module, jnp.ones(size))
    np.testing.assert_array_equal(best, jnp.ones(size))


def test_the_guard_selects_large_and_small_arrays_alike():
    new = {"big": jnp.full(LARGE_LEAF, 2.0), "small": jnp.full(3, 2.0), "name": "kept"}
    old = {"big": jnp.ones(LARGE_LEAF), "small": jnp.ones(3), "name": "kept"}
    for pred, expected in ((True, 2.0), (False, 1.0)):
        chosen = eqx.filter_jit(_where)(jnp.asarray(pred), new, old)
        assert chosen["name"] == "kept"
        for leaf in ("big", "small"):
            np.testing.assert_array_equal(chosen[leaf], jnp.full_like(new[leaf], expected))


def test_a_diverging_forecaster_leaves_no_model(tmp_path):
    import test_train  # noqa: F401  (registers the test-linear model)
    from diffdyn.train import load_data, train_model

    series, source = load_data(system="henon", steps=300)
    with pytest.raises(TrainingError, match="diverged"):
        train_model(series, source, "test-linear", tmp_path / "m", progress=False,
                    hyperparameters={"blow_up": True})  # fmt: skip
    assert not (tmp_path / "m" / "model.json").exists()
    assert not (tmp_path / "m" / "model.eqx").exists()


def test_a_run_needs_an_end_and_resume_needs_a_state(tmp_path):
    def loss(w, batch, key):
        return w**2

    with pytest.raises(DiffdynError, match="an end"):
        train(jnp.asarray(1.0), loss, Progress(), optax.sgd(0.1), key=jax.random.key(0))
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(jnp.asarray(1.0), loss, Progress(), optax.sgd(0.1), key=jax.random.key(0),
              steps=5, checkpoint=tmp_path, resume=True)  # fmt: skip


def test_any_module_is_saved_and_rebuilt_from_its_recipe(tmp_path):
    fitted = identify_henon(50).module
    save_module(tmp_path / "henon.eqx", fitted, Recipe("diffdyn.systems.henon:Henon"))
    loaded = load_module(tmp_path / "henon.eqx")
    assert isinstance(loaded, Henon) and float(loaded.a) == float(fitted.a)
    save_module(tmp_path / "os.eqx", fitted, Recipe("os:system", ["echo no"]))
    with pytest.raises(DiffdynError, match="neither part of diffdyn nor an Equinox module"):
        load_module(tmp_path / "os.eqx")


@pytest.mark.parametrize("how", ["interrupted", "killed"])
@pytest.mark.parametrize("moment", ["moved aside", "writing", "arrays written", "described"])
def test_a_kill_at_any_moment_of_a_checkpoint_write_loses_nothing(
    tmp_path, monkeypatch, moment, how
):
    """The checkpoint is written so that whenever the process stops — interrupted (the write
    puts things back in order) or killed (nothing runs after) — the last complete state is
    there: the resumed run is the uninterrupted one, bit for bit, and leaves no file behind."""
    from diffdyn.train import checkpoint, loop

    full = identify_henon(100, validate_every=25)
    if how == "killed":  # no clean-up runs after the kill, as after SIGKILL
        monkeypatch.setattr(loop, "_settle", lambda folder: None)
    armed = {"on": False}
    real_replace, real_atomic, real_json = os.replace, loop.atomic_write, checkpoint.write_json

    def fire(now: str) -> None:
        if armed["on"] and now == moment:
            armed["on"] = False
            raise KeyboardInterrupt

    def replace(src, dst):
        real_replace(src, dst)
        if Path(dst).name == loop.STATE_PREVIOUS:
            fire("moved aside")

    def atomic(path, write):
        if Path(path).name != loop.STATE_ARRAYS:
            return real_atomic(path, write)

        def half_then_fire(file):
            write(file)
            file.flush()
            if how == "killed" and armed["on"] and moment == "writing":  # what a kill leaves
                (Path(path).parent / ".state.eqx.0123456789ab.tmp").write_bytes(b"half")
            fire("writing")

        real_atomic(path, half_then_fire)
        fire("arrays written")

    def described(path, content):
        real_json(path, content)
        if Path(path).name == loop.STATE_JSON:
            fire("described")

    def arm(state):
        armed["on"] = state.step == 25  # the next checkpoint (step 50) is killed

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(loop, "atomic_write", atomic)
    monkeypatch.setattr(checkpoint, "write_json", described)
    with pytest.raises(KeyboardInterrupt):
        identify_henon(100, validate_every=25, checkpoint=tmp_path, on_validation=arm)
    if how == "interrupted":  # the interrupted write put everything back in order
        assert sorted(p.name for p in tmp_path.iterdir()) == ["state.eqx", "state.json"]
    resumed = identify_henon(100, validate_every=25, checkpoint=tmp_path, resume=True)
    assert resumed.steps == 100
    np.testing.assert_array_equal(np.asarray(resumed.module.a), np.asarray(full.module.a))
    assert [r.step for r in resumed.history] == [25, 50, 75, 100]
    assert [r.loss for r in resumed.history] == [r.loss for r in full.history]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.eqx", "state.json"]


def test_a_whole_state_of_another_module_is_not_called_truncated(tmp_path):
    identify_henon(50, validate_every=25, checkpoint=tmp_path)

    def loss(w, batch, key):
        return jnp.sum(w**2)

    with pytest.raises(TrainingError, match="whole but was written for another module") as info:
        train(jnp.ones(3), loss, Progress(), optax.adam(1e-2), key=jax.random.key(0), steps=10,
              checkpoint=tmp_path, resume=True, progress=False)  # fmt: skip
    assert "truncated" not in str(info.value)
    state = tmp_path / "state.eqx"
    state.write_bytes(state.read_bytes()[:-3])
    with pytest.raises(TrainingError, match="damaged: state.eqx is missing, truncated"):
        identify_henon(100, validate_every=25, checkpoint=tmp_path, resume=True)


def test_a_budget_covers_validation_time():
    """Validation counts against the budget: a run that validates slowly still ends near it."""
    import time

    def loss(w, batch, key):
        return (w - 1.0) ** 2

    def slow_validation(w):
        time.sleep(0.15)
        return float((w - 1.0) ** 2)

    started = time.perf_counter()
    outcome = train(jnp.asarray(0.0), loss, Progress(), optax.sgd(0.1), key=jax.random.key(0),
                    budget=1.0, validate=slow_validation, validate_every=200,
                    progress=False)  # fmt: skip
    took = time.perf_counter() - started
    assert "budget of 1 s reached" in outcome.stop_reason
    assert took < 1.0 + 0.3 and outcome.seconds <= took
    assert outcome.compile_seconds > 0 and outcome.history[-1].progress == pytest.approx(1.0)
