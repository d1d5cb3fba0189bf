"""`compare` on dysts systems: the dysts protocol's cells and report table, a dysts system
under the default protocol, and the refusals (one line, exit 2, nothing written)."""

import importlib.util
import sys

import pytest
from typer.testing import CliRunner

from diffdyn.cli import app
from diffdyn.compare import ResultsStore, run_compare, write_report
from diffdyn.compare.report import protocol_table
from diffdyn.compare.store import STORE_FILE

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("dysts") is None, reason="the dysts extra is not installed"
)
MODELS = ["persistence", "ngrc"]


def test_the_dysts_protocol_scores_smape_and_the_report_puts_it_beside_the_published(tmp_path):
    out = tmp_path / "run"
    systems = ["dysts:Lorenz", "dysts:rossler"]
    summary = run_compare(out, systems, MODELS, budget_per_model=5, progress=False,
                          protocol="dysts", granularity="coarse")  # fmt: skip
    assert summary.ran == 4 and summary.failed == 0
    with ResultsStore(out / STORE_FILE) as store:
        cells = store.cells()
        protocol, granularity, rows = protocol_table(store)
    assert {k[0] for k in cells} == {"dysts:Lorenz", "dysts:Rossler"}
    for metrics in cells.values():
        assert metrics["protocol"] == "dysts" and metrics["horizon"] == 30  # 2 periods × 15
        assert 0 <= metrics["smape"] <= 200 and "power_spectrum_distance" not in metrics
    assert (protocol, granularity) == ("dysts", "coarse")
    assert sorted(r.model for r in rows) == sorted(MODELS) and all(r.systems == 2 for r in rows)
    write_report(out)
    text = (out / "report.md").read_text()
    assert "## dysts benchmark (univariate, coarse granularity)" in text
    assert "| NBEATS | univariate | 50.6 |" in text  # the published coarse figure
    again = run_compare(out, systems, MODELS, budget_per_model=5, progress=False,
                        protocol="dysts", granularity="coarse")  # fmt: skip
    assert again.ran == 0 and again.skipped == 4


def test_a_dysts_system_under_the_default_protocol_is_scored_like_a_system(tmp_path):
    out = tmp_path / "run"
    summary = run_compare(out, ["dysts:Lorenz"], ["persistence"], budget_per_model=5,
                          progress=False, long_run=False)  # fmt: skip
    assert summary.failed == 0
    with ResultsStore(out / STORE_FILE) as store:
        (metrics,) = store.cells().values()
    assert metrics["vpt_unit"] == "Lyapunov times" and "protocol" not in metrics


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--systems", "dysts:Lorenz", "--protocol", "dyst"], "did you mean 'dysts'"),
        (["--systems", "dysts:Rosler"], "'Rossler'"),
        (["--systems", "henon", "--protocol", "dysts"], "scores dysts systems only"),
        (["--systems", "dysts:Lorenz", "--protocol", "dysts", "--granularity", "fin"], "fine"),
    ],
)
def test_bad_dysts_requests_are_one_line(tmp_path, args, fragment):
    out = tmp_path / "x"
    result = CliRunner().invoke(app, ["compare", *args, "--models", "persistence", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert fragment in result.output.lower() or fragment in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_dysts_not_installed_says_how_to_install(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "dysts" or m.startswith("dysts.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dysts", None)
    out = tmp_path / "x"
    result = CliRunner().invoke(app, ["compare", "--systems", "dysts:all", "-o", str(out)])
    assert result.exit_code == 2 and "pip install 'diffdyn[dysts]'" in result.output
    assert not out.exists()
