import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from diffdyn.data import Series
from diffdyn.errors import DataError
from diffdyn.plot import check_figure_path, choose_plot_kind, format_parameters, plot_series
from diffdyn.systems import get_system, simulate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lorenz():
    return simulate(get_system("lorenz63"), steps=200, transient=1.0)


@pytest.fixture(scope="module")
def logistic():
    return simulate(get_system("logistic"), steps=200)


@pytest.fixture(scope="module")
def ks():
    return simulate(get_system("kuramoto-sivashinsky"), steps=200, transient=10.0)


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_attractor_for_three_variables(lorenz, tmp_path):
    assert choose_plot_kind(lorenz) == "attractor"
    figure = plot_series(lorenz, tmp_path / "lorenz.png")
    assert isinstance(figure, Figure)
    assert _is_png(tmp_path / "lorenz.png")
    (ax,) = figure.axes
    assert ax.name == "3d"
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()) == ("x", "y", "z")
    title = figure.get_suptitle()
    assert "lorenz63" in title and "rho=28" in title and "beta=2.667" in title


def test_time_series_for_one_variable(logistic, tmp_path):
    assert choose_plot_kind(logistic) == "timeseries"
    figure = plot_series(logistic, tmp_path / "logistic.png")
    assert _is_png(tmp_path / "logistic.png")
    (ax,) = figure.axes
    assert ax.get_ylabel() == "x"
    assert ax.get_xlabel() == "iteration n"


def test_space_time_image_for_a_pde(ks, tmp_path):
    assert choose_plot_kind(ks) == "spacetime"
    figure = plot_series(ks, tmp_path / "ks.png")
    assert _is_png(tmp_path / "ks.png")
    image, colourbar = figure.axes
    assert "time" in image.get_xlabel()
    assert "space index" in image.get_ylabel()
    assert colourbar.get_ylabel() == "u"


def test_many_variables_read_as_a_field_and_kind_can_be_forced(lorenz):
    wide = Series(np.zeros((20, 12)), np.arange(20.0), tuple(f"s{i}" for i in range(12)))
    assert choose_plot_kind(wide) == "spacetime"
    four = Series(np.zeros((20, 4)), np.arange(20.0), ("a", "b", "c", "d"))
    assert choose_plot_kind(four) == "attractor"
    stacked = plot_series(lorenz, kind="timeseries", title="mine")
    assert [ax.get_ylabel() for ax in stacked.axes] == ["x", "y", "z"]
    assert stacked.get_suptitle() == "mine"


def test_exogenous_inputs_get_their_own_panel():
    series = simulate(get_system("van-der-pol"), steps=50, transient=0.0)
    figure = plot_series(series)
    assert [ax.get_ylabel() for ax in figure.axes] == ["x", "v", "forcing (input)"]


def test_no_pyplot_state_leaks(lorenz):
    before = plt.get_fignums()
    plot_series(lorenz)
    assert plt.get_fignums() == before


def test_refuses_to_overwrite_without_force(lorenz, logistic, tmp_path):
    path = tmp_path / "figure.png"
    plot_series(lorenz, path)
    original = path.read_bytes()
    with pytest.raises(DataError, match="already exists"):
        plot_series(logistic, path)
    assert path.read_bytes() == original
    plot_series(logistic, path, force=True)
    assert path.read_bytes() != original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]  # no temporary left


@pytest.mark.parametrize(
    "name, match",
    [("missing/figure.png", "does not exist"), ("figure.xyz", "file name ending in")],
)
def test_bad_paths_are_data_errors(tmp_path, name, match):
    with pytest.raises(DataError, match=match):
        check_figure_path(tmp_path / name)


def test_batched_series_and_unknown_kind_are_refused(lorenz):
    batched = lorenz.replace(values=np.zeros((2, 200, 3)), times=np.zeros((2, 200)))
    with pytest.raises(DataError, match="one trajectory"):
        plot_series(batched)
    with pytest.raises(DataError, match="unknown plot kind"):
        plot_series(lorenz, kind="histogram")
    with pytest.raises(DataError, match="needs 3 variables"):
        plot_series(lorenz.select(["x"]), kind="attractor")


def test_format_parameters():
    assert format_parameters({"sigma": 10.0, "beta": 8 / 3, "n": 64}) == "sigma=10 beta=2.667 n=64"
