"""`plot_attention`, `explain_model` / `diffdyn explain` and the attention figure of the report,
with a tiny stand-in attention model registered here as "test-attention"."""

import json
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure

import diffdyn.models.mtnet  # noqa: F401  (registers "mtnet")
from diffdyn.compare import run_compare, write_report
from diffdyn.data.scale import Scaler
from diffdyn.errors import DataError
from diffdyn.models import build_model
from diffdyn.models.base import AbstractForecaster
from diffdyn.models.registry import ModelSpec, register_model
from diffdyn.plot import plot_attention
from diffdyn.train import (
    DataSource,
    Explanation,
    attention_models,
    checkpoint,
    explain_model,
    load_data,
    load_model,
)
from test_cli import assert_one_line_error, run

CONTEXT, HORIZON = 8, 4
HENON = ["--system", "henon", "--steps", "400"]


class AttentionStep(AbstractForecaster):
    """Content attention over the context, queried by the last forecast (a stand-in model).

    α_k = softmax_i(context_i · Q ŷ_{k-1}); ŷ_k = ŷ_{k-1} + R (Σ_i α_ki context_i − ŷ_{k-1}).
    With `input_attention`, also a DA-RNN-like weight of each driving series per context step.
    """

    name: ClassVar[str] = "test-attention"
    has_attention: ClassVar[bool] = True
    query: jax.Array
    readout: jax.Array
    gate: jax.Array
    input_attention: bool = eqx.field(static=True)

    def __init__(self, dim, exog_dim=0, *, key, input_attention=False):
        query_key, readout_key = jax.random.split(key)
        self.query = jax.random.normal(query_key, (dim, dim))
        self.readout = 0.1 * jax.random.normal(readout_key, (dim, dim))
        self.gate = jnp.ones(dim + exog_dim)
        self.input_attention = input_attention

    def __call__(self, context, exog=None, *, horizon, key=None):
        def step(y, _):
            alpha = jax.nn.softmax(context @ (self.query @ y))
            y_next = y + self.readout @ (alpha @ context - y)
            return y_next, (y_next, alpha)

        _, (out, alpha) = jax.lax.scan(step, context[-1], None, length=horizon)
        aux = {"attention": alpha}
        if self.input_attention:
            driving = (
                context if exog is None else jnp.concatenate([context, exog[: len(context)]], 1)
            )
            aux["input_attention"] = jax.nn.softmax(driving * self.gate[None], axis=1)
        return out, aux


register_model(
    ModelSpec(
        "test-attention",
        AttentionStep,
        {"input_attention": False},
        "a one-layer content-attention model for the tests",
        training={
            "context": CONTEXT,
            "horizon": HORIZON,
            "epochs": 2,
            "batch_size": 64,
            "patience": 0,
        },
    )
)


# -- the figure ------------------------------------------------------------------------------
def _softmax_rows(shape, seed=0):
    scores = np.random.default_rng(seed).normal(size=shape)
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


def test_plot_attention_heat_map(tmp_path):
    weights = _softmax_rows((30, 200))
    figure = plot_attention(weights, tmp_path / "a.png", title="demo")
    assert isinstance(figure, Figure) and (tmp_path / "a.png").stat().st_size > 1000
    heat, colourbar = figure.axes
    assert "input (context) step" in heat.get_xlabel() and "most recent" in heat.get_xlabel()
    assert "output (forecast) step" in heat.get_ylabel()
    ticks = list(heat.get_xticks())
    assert ticks[-1] == -1 and min(ticks) >= -200 and len(ticks) <= 12
    (image,) = heat.get_images()
    assert image.get_clim() == pytest.approx((0.0, weights.max()))
    assert np.array_equal(np.asarray(image.get_array()), weights)
    left, right, bottom, top = image.get_extent()
    assert (left, right) == (-200.5, -0.5) and (top, bottom) == (0.5, 30.5)  # step 1 on top
    assert colourbar.get_ylabel() == "attention weight α"
    assert figure.get_suptitle() == "demo"
    with pytest.raises(DataError, match="already exists"):
        plot_attention(weights, tmp_path / "a.png")
    # One step from one sample still labels both ends.
    (heat, _) = plot_attention(np.ones((1, 1))).axes
    assert list(heat.get_xticks()) == [-1] and list(heat.get_yticks()) == [1]


def test_plot_attention_with_input_attention():
    inputs = _softmax_rows((8, 3), seed=1)
    figure = plot_attention(
        _softmax_rows((4, 8)), input_attention=inputs, variable_names=["x", "y", "u"]
    )
    heat, bars, _ = figure.axes
    assert [t.get_text() for t in bars.get_yticklabels()] == ["x", "y", "u"]
    heights = [p.get_width() for p in bars.containers[0]]
    assert heights == pytest.approx(inputs.mean(axis=0))
    assert "input-attention" in bars.get_xlabel()


def test_plot_attention_with_memory_attention():
    memory = _softmax_rows((4, 3), seed=2)
    figure = plot_attention(_softmax_rows((4, 20)), memory_attention=memory, block_length=4)
    heat, blocks, heat_bar, blocks_bar = figure.axes
    (image,) = blocks.get_images()
    assert np.array_equal(np.asarray(image.get_array()), memory)
    assert image.get_extent() == [0.5, 3.5, 4.5, 0.5]  # block 1 (oldest) left, step 1 on top
    # 3 blocks of 4 steps before the 4-step query window that ends the 20-step context.
    labels = [t.get_text() for t in blocks.get_xticklabels()]
    assert labels == ["−16…−13", "−12…−9", "−8…−5"]
    assert "oldest left" in blocks.get_xlabel() and "p" in blocks_bar.get_ylabel()
    assert heat_bar.get_ylabel() == "attention weight α"
    # With input attention too: three panels; without a block length, blocks are numbered.
    figure = plot_attention(
        _softmax_rows((4, 20)), memory_attention=memory, input_attention=_softmax_rows((20, 2))
    )
    heat, blocks, bars = figure.axes[:3]
    assert [t.get_text() for t in blocks.get_xticklabels()] == ["block 1", "block 2", "block 3"]
    assert "input-attention" in bars.get_xlabel()


@pytest.mark.parametrize(
    "memory, block_length, message",
    [
        (np.ones((3, 2)) / 2, 4, "horizon, blocks"),
        (np.full((4, 2), np.nan), 4, "horizon, blocks"),
        (np.ones((4, 5)) / 5, 4, "do not fit in a context of 20"),
    ],
)
def test_plot_attention_bad_memory_attention(memory, block_length, message, tmp_path):
    with pytest.raises(DataError, match=message):
        plot_attention(
            _softmax_rows((4, 20)),
            tmp_path / "x.png",
            memory_attention=memory,
            block_length=block_length,
        )
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "weights, inputs, names, message",
    [
        (np.ones(5), None, None, "horizon, context"),
        (np.full((2, 3), np.nan), None, None, "NaN"),
        (np.ones((2, 3)) / 3, np.ones((3, 2)), ["x"], "2 driving series but 1 names"),
        (np.ones((2, 3)) / 3, np.ones(3), None, "context, n"),
    ],
)
def test_plot_attention_bad_input(weights, inputs, names, message, tmp_path):
    with pytest.raises(DataError, match=message):
        plot_attention(weights, tmp_path / "x.png", input_attention=inputs, variable_names=names)
    assert not (tmp_path / "x.png").exists()


# -- diffdyn explain -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Models trained once: test-attention on Hénon (plain and with input attention) and
    persistence (no attention), plus a Hénon file for --data."""
    root = tmp_path_factory.mktemp("explain")
    data = root / "henon.csv"
    assert run("simulate", "henon", "--steps", "400", "-o", data).exit_code == 0
    folders = {
        "plain": ("train", *HENON, "--model", "test-attention"),
        "inputs": ("train", "--data", data, "--model", "test-attention"),
        "persistence": ("train", *HENON, "--model", "persistence"),
    }
    out = {}
    for name, args in folders.items():
        extra = ("-p", "input_attention=true") if name == "inputs" else ()
        result = run(*args, *extra, "-o", root / name)
        assert result.exit_code == 0, result.stderr
        out[name] = root / name
    out["data"] = data
    return out


def test_help_shows_an_example():
    result = run("explain", "--help")
    assert result.exit_code == 0
    assert "Example: diffdyn explain" in " ".join(result.stdout.split())


def test_explain_with_a_system(models, tmp_path):
    png, out = tmp_path / "a.png", tmp_path / "a.json"
    result = run("explain", models["plain"], *HENON, "-o", png, "--json", out)
    assert result.exit_code == 0, result.stderr
    assert png.stat().st_size > 1000
    written = json.loads(out.read_text())
    attention = np.asarray(written["attention"])
    assert attention.shape == (HORIZON, CONTEXT) and written["input_attention"] is None
    assert written["memory_attention"] is None and written["block_length"] is None
    assert np.all(attention >= 0) and np.allclose(attention.sum(axis=1), 1, atol=1e-5)
    assert written["start"] == 0 and written["held_out_end_of_training_file"] is False

    # The same weights as running the model by hand on the first window of the fresh data.
    model, sidecar = load_model(models["plain"])
    series, _ = load_data(system="henon", steps=400, fresh=True)
    context = Scaler.from_dict(sidecar["scaler"]).transform(np.asarray(series.values)[:CONTEXT])
    _, aux = model(jnp.asarray(context), horizon=HORIZON)
    assert np.allclose(attention, np.asarray(aux["attention"]), atol=1e-6)

    lags = CONTEXT - attention.argmax(axis=1)
    assert [p["lag"] for p in written["peaks"]] == lags.tolist()
    assert written["mean_attention_per_lag"] == pytest.approx(attention.mean(axis=0)[::-1])
    text = " ".join(result.stdout.split())
    assert f"forecast step 1 lag {lags[0]} gets most weight ({attention[0].max():.3g})" in text
    assert "mean weight per lag" in text and "input attention" not in text
    assert f"context {CONTEXT} (samples 0–7), horizon {HORIZON} (samples 8–11)" in text
    assert str(png) in text

    # Another window and horizon: a longer alignment, not the first window's.
    result = run(
        "explain", models["plain"], *HENON, "-o", png, "--json", out, "--force",
        "--start", "50", "--horizon", "30",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    later = json.loads(out.read_text())
    assert np.asarray(later["attention"]).shape == (30, CONTEXT) and later["start"] == 50
    assert later["first_sample"] == 50
    assert not np.allclose(np.asarray(later["attention"])[:HORIZON], attention)


def test_explain_held_out_end_of_a_file_with_input_attention(models, tmp_path):
    png, out = tmp_path / "a.png", tmp_path / "a.json"
    result = run("explain", models["inputs"], "--data", models["data"], "-o", png, "--json", out)
    assert result.exit_code == 0, result.stderr
    written = json.loads(out.read_text())
    assert written["held_out_end_of_training_file"] is True
    assert written["driving_series"] == ["x", "y"]
    inputs = np.asarray(written["input_attention"])
    assert inputs.shape == (CONTEXT, 2) and np.allclose(inputs.sum(axis=1), 1, atol=1e-5)
    assert written["mean_input_attention"] == pytest.approx(inputs.mean(axis=0))
    text = " ".join(result.stdout.split())
    assert "its held-out end" in text and "input attention" in text and "x: " in text
    assert f"context {CONTEXT} (samples 312–319), horizon {HORIZON} (samples 320–323)" in text
    assert written["first_sample"] == 320 - CONTEXT
    # The first window reaches back `context` rows before the held-out end (row 320 of 400).
    model, sidecar = load_model(models["inputs"])
    series, _ = load_data(data=str(models["data"]))
    rows = np.asarray(series.values)[320 - CONTEXT : 320]
    context = Scaler.from_dict(sidecar["scaler"]).transform(rows)
    _, aux = model(jnp.asarray(context), horizon=HORIZON)
    assert np.allclose(np.asarray(written["attention"]), np.asarray(aux["attention"]), atol=1e-6)


def test_explain_bad_input(models, tmp_path):
    png, out = tmp_path / "a.png", tmp_path / "a.json"
    assert_one_line_error(run("explain", tmp_path / "nothing", *HENON, "-o", png), "no model")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("explain", tmp_path / "empty", *HENON, "-o", png), "model.json")
    line = assert_one_line_error(
        run("explain", models["persistence"], *HENON, "-o", png), "persistence has no attention"
    )
    assert "test-attention" in line and "test-attention" in attention_models()
    assert "persistence" not in attention_models()
    assert_one_line_error(run("explain", models["plain"], *HENON, "-o", png, "--horizon", "0"))
    assert_one_line_error(
        run("explain", models["plain"], *HENON, "-o", png, "--horizon", "1000"),
        "--horizon at most",
    )
    assert_one_line_error(
        run("explain", models["plain"], *HENON, "-o", png, "--start", "395"), "--start can be"
    )
    assert_one_line_error(run("explain", models["plain"], "-o", png), "exactly one of")
    assert not png.exists()
    png.write_bytes(b"old")
    line = assert_one_line_error(
        run("explain", models["plain"], *HENON, "-o", png, "--json", out), "--force"
    )
    assert png.read_bytes() == b"old" and not out.exists()


def test_explain_mtnet_draws_its_memory_blocks(models, tmp_path):
    """A tiny MTNet (blocks of 4 steps, context 12: 2 memory blocks and the query), saved
    untrained with the sidecar of the Hénon model (training one would cost ~10 s)."""
    folder, png, out = tmp_path / "mtnet", tmp_path / "a.png", tmp_path / "a.json"
    params = {"window": 4, "hidden": 4, "filters": 2, "kernel": 2, "ar_window": 2}
    _, sidecar = load_model(models["plain"])
    sidecar["model"], sidecar["hyperparameters"] = "mtnet", params
    sidecar["training"] = {**sidecar["training"], "context": 12, "horizon": 3}
    folder.mkdir()
    model = build_model("mtnet", 2, key=jax.random.key(0), **params)
    checkpoint.save_model(folder, model, sidecar)
    result = run("explain", folder, *HENON, "-o", png, "--json", out)
    assert result.exit_code == 0, result.stderr
    assert "memory blocks" in result.stdout and "−8…−5" in result.stdout
    steps = [line for line in result.stdout.splitlines() if "forecast step" in line]
    assert steps and all("memory block −" in line and "lag" not in line for line in steps)
    written = json.loads(out.read_text())
    memory, attention = np.asarray(written["memory_attention"]), np.asarray(written["attention"])
    assert memory.shape == (3, 2) and written["block_length"] == 4
    assert np.all(memory >= 0) and np.allclose(memory.sum(axis=1), 1, atol=1e-5)
    assert attention.shape == (3, 12) and np.all(attention[:, 8:] == 0)  # not the query
    assert np.allclose(attention[:, :8], np.repeat(memory / 4, 4, axis=1), atol=1e-7)
    # The library's figure of that result has the block panel, labelled by lags.
    series, source = load_data(system="henon", steps=400, fresh=True)
    explained = explain_model(folder, series, source)
    assert np.allclose(explained.memory_attention, memory)
    figure = plot_attention(
        np.asarray(explained.attention),
        memory_attention=explained.memory_attention,
        block_length=explained.block_length,
    )
    blocks = figure.axes[1]
    assert [t.get_text() for t in blocks.get_xticklabels()] == ["−12…−9", "−8…−5"]
    assert np.allclose(np.asarray(blocks.get_images()[0].get_array()), memory)


def test_explanation_ranks_lags_inputs_and_blocks():
    attention = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])  # lag 3, 2, 1 from the left
    inputs = np.array([[0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    memory = np.array([[0.3, 0.7], [0.6, 0.4]])
    result = Explanation(
        "m", DataSource("series"), False, 0, 0, 3, 2, attention, ("x", "u"),
        input_attention=inputs, memory_attention=memory, block_length=1,
    )  # fmt: skip
    assert result.peaks == [(1, 0.7), (3, 0.5)]
    assert result.mean_attention_per_lag == pytest.approx([0.45, 0.25, 0.3])
    assert [p.lag for p in result.ranked_lags()] == [1, 3, 2]
    assert [p.name for p in result.ranked_inputs()] == ["u", "x"]
    assert result.memory_peaks == [(1, 0.7), (0, 0.6)]
    assert [b.block for b in result.ranked_blocks()] == [1, 0]  # 0.55 before 0.45
    again = Explanation.from_json(json.loads(json.dumps(result.to_json())))
    assert again.peaks == result.peaks and np.array_equal(again.memory_attention, memory)
    assert again.to_json() == result.to_json()


# -- the compare report ----------------------------------------------------------------------
def test_report_draws_the_best_attention_model(tmp_path):
    out = tmp_path / "run"
    run_compare(
        out, ["henon"], ["persistence", "test-attention"], budget_per_model=5, progress=False
    )
    paths = write_report(out)
    markdown, page = paths.markdown.read_text(), paths.html.read_text()
    figure = out / "figures" / "attention-henon-test-attention.png"
    assert figure.stat().st_size > 1000
    assert "(figures/attention-henon-test-attention.png)" in markdown
    assert "Where test-attention looks on the first test window of henon" in markdown
    assert 'alt="test-attention attention on henon"' in page
    # Only models with attention are drawn.
    assert [f.name for f in (out / "figures").glob("attention-*")] == [figure.name]
