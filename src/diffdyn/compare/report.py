"""The report of a `compare` run: `report.md` and a self-contained `report.html`.

Per dataset: a leaderboard sorted by valid prediction time (VPT), a figure of NRMSE against
lead time for every model, forecasts of the two best models, the alignment matrix of the best
attention model (when one was trained), and a recommendation in plain words drawn only from
the measured numbers. Everything is drawn from what the grid stored (`results.sqlite`: the
metrics, and each cell's forecast and alignment artifacts); nothing is simulated or forecast
again. Figures are PNG files beside the report (linked from the Markdown) and embedded in the
HTML as base64, so the HTML file can be mailed on its own.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..files import atomic_write
from ..plot import plot_attention, plot_forecast
from ..train import Explanation, Forecast
from .grid import ATTENTION, FORECAST, pooled_vpt
from .store import STORE_FILE, ResultsStore, store_path

FIGURES_FOLDER = "figures"


def leaderboards(store: ResultsStore) -> dict[str, list[dict[str, Any]]]:
    """{dataset: rows sorted by VPT (best first), failed models last}.

    Each row: model, status, seeds, vpt_mean, vpt_std, vpt_unit, nrmse_lead, nrmse_lead_time,
    smape, train_seconds, parameters, reason, curve (mean NRMSE per lead), dt, lyapunov_exponent,
    and, where the cells measured them, the long-run columns (`LONG_RUN_NUMBERS`, `long_run`).
    """
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (dataset, model, _seed), metrics in store.cells().items():
        by_key.setdefault((dataset, model), []).append(metrics)
    boards: dict[str, list[dict[str, Any]]] = {}
    for (dataset, model), cells in by_key.items():
        ok = [c for c in cells if c.get("status") == "ok"]
        row: dict[str, Any] = {"model": model, "seeds": len(cells), "ok_seeds": len(ok)}
        if ok:
            mean, std = pooled_vpt(ok)
            curves = [json.loads(c["nrmse_curve"]) for c in ok]
            length = min(len(c) for c in curves)
            row.update(
                status="ok",
                vpt_mean=mean,
                vpt_std=std,
                vpt_unit=ok[0]["vpt_unit"],
                nrmse_lead=float(np.mean([c["nrmse_lead"] for c in ok])),
                nrmse_lead_time=ok[0]["nrmse_lead_time"],
                smape=float(np.mean([c["smape"] for c in ok])),
                train_seconds=float(np.mean([c["train_seconds"] for c in ok])),
                parameters=int(ok[0]["parameters"]),
                curve=np.mean([c[:length] for c in curves], axis=0).tolist(),
                dt=ok[0]["dt"],
                lyapunov_exponent=ok[0].get("lyapunov_exponent"),
                censored=int(sum(c.get("vpt_censored", 0) for c in ok)),
                note="; ".join(sorted({str(c["note"]) for c in ok if c.get("note")})),
                **_long_run_row(ok),
            )
        else:
            row["status"] = "failed"
        failed = [c for c in cells if c.get("status") != "ok"]
        row["reason"] = "; ".join(sorted({str(c.get("reason", "")) for c in failed}))
        boards.setdefault(dataset, []).append(row)
    for rows in boards.values():
        rows.sort(key=lambda r: (r["status"] != "ok", -r.get("vpt_mean", 0.0), r["model"]))
    return dict(sorted(boards.items()))


@dataclasses.dataclass(frozen=True)
class ProtocolRow:
    """One model under the dysts protocol: its `median_smape` (0–200) over the `systems` it
    finished (each system's sMAPE averaged over seeds), the `failed` systems, the mean `vpt`
    of its one forecast per system (in `vpt_unit`)."""

    model: str
    systems: int
    failed: int
    median_smape: float | None
    vpt: float | None
    vpt_unit: str


def protocol_table(store: ResultsStore) -> tuple[str, str, list[ProtocolRow]] | None:
    """The dysts-protocol summary of a run — (protocol, granularity, rows best first) — or
    `None` when no cell ran under that protocol."""
    per: dict[str, dict[str, list[dict[str, Any]]]] = {}
    protocol = granularity = ""
    for (dataset, model, _seed), metrics in store.cells().items():
        if not str(metrics.get("protocol", "")).startswith("dysts"):
            continue
        protocol, granularity = str(metrics["protocol"]), str(metrics.get("granularity", ""))
        per.setdefault(model, {}).setdefault(dataset, []).append(metrics)
    if not per:
        return None
    rows = []
    for model, datasets in per.items():
        scores, vpts, failed, unit = [], [], 0, ""
        for cells in datasets.values():
            ok = [c for c in cells if c.get("status") == "ok"]
            if not ok:
                failed += 1
                continue
            scores.append(float(np.mean([c["smape"] for c in ok])))
            vpts.append(float(np.mean([c["vpt_mean"] for c in ok])))
            unit = str(ok[0].get("vpt_unit", ""))
        rows.append(
            ProtocolRow(
                model,
                len(scores),
                failed,
                float(np.median(scores)) if scores else None,
                float(np.mean(vpts)) if vpts else None,
                unit,
            )
        )
    rows.sort(key=lambda r: (r.median_smape is None, r.median_smape or 0.0, r.model))
    return protocol, granularity, rows


def _protocol_section(store: ResultsStore) -> list[str]:
    """Markdown: diffdyn's median sMAPE per model beside the published dysts figures."""
    from ..dysts_protocol import PUBLISHED_SOURCE, published_scores

    table = protocol_table(store)
    if table is None:
        return []
    protocol, granularity, rows = table
    setting = "multivariate" if protocol == "dysts-multivariate" else "univariate"
    md = [
        f"## dysts benchmark ({setting}, {granularity} granularity)",
        "",
        "Median sMAPE (0–200, lower is better) over the systems, of one closed-loop forecast of "
        "2 periods after training on 10 (Gilpin 2021's protocol; `docs/dysts.md`).",
        "",
        "| model | systems | failed | median sMAPE | mean VPT |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        median = "—" if r.median_smape is None else f"{r.median_smape:.1f}"
        vpt = "—" if r.vpt is None else f"{_g(r.vpt)} {r.vpt_unit}"
        md.append(f"| {r.model} | {r.systems} | {r.failed} | {median} | {vpt} |")
    published = [p for p in published_scores() if str(p.granularity) == granularity]
    if published:
        md += ["", f"Published ({PUBLISHED_SOURCE}):", "", "| model | setting | median sMAPE |",
               "|---|---|---|"]  # fmt: skip
        md += [f"| {p.model} | {p.setting} | {p.median_smape:.1f} |" for p in published]
    return md + [""]


def halving_rounds_text(store: ResultsStore, dataset: str) -> str | None:
    """The rounds of successive halving on `dataset` in words (`None` without halving)."""
    rounds: dict[int, list[str]] = {}
    budgets: dict[int, float] = {}
    for (name, model, _seed), metrics in store.cells().items():
        if name != dataset or metrics.get("halving_round") is None:
            continue
        r = int(metrics["halving_round"])
        rounds.setdefault(r, []).append(model)
        if "halving_budget_s" in metrics:
            budgets[r] = float(metrics["halving_budget_s"])
    if not rounds:
        return None
    last = max(rounds)
    parts = []
    for r in sorted(rounds):
        models = ", ".join(sorted(set(rounds[r])))
        budget = f" ({budgets[r]:.3g} s each)" if r in budgets else ""
        verb = "trained longest" if r == last else "dropped"
        parts.append(f"after round {r + 1}{budget} {verb}: {models}")
    return (
        "Successive halving (gradient-trained models; each round the better half by VPT on "
        "validation data trains again with twice the budget): " + "; ".join(parts) + "."
    )


def _markdown_html(lines: list[str]) -> list[str]:
    """The few Markdown forms of `_protocol_section` as HTML: headings, tables, paragraphs."""
    out: list[str] = []
    rows: list[list[str]] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                rows.append([c.strip() for c in line.strip("|").split("|")])
            continue
        if rows:
            head, *rest = rows
            table = "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            table += "</tr></thead><tbody>"
            for row in rest:
                table += "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            out.append(table + "</tbody></table>")
            rows = []
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line:
            out.append(f"<p>{html.escape(line)}</p>")
    return out


LONG_RUN_NUMBERS = (
    "model_lyapunov_exponent",
    "system_lyapunov_exponent",
    "spectrum_error",
    "power_spectrum_distance",
    "density_distance",
)
# A model "reproduces the attractor" when its long run stays bounded and aperiodic (or cycles
# where the truth does: its λ₁ ≤ 0), its power spectrum is within this Hellinger distance of
# the truth's, and the sign of its λ₁ is the system's (chaos for chaos).
ATTRACTOR_SPECTRUM_DISTANCE = 0.2


def _long_run_row(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The long-run columns of a leaderboard row: means over the seeds that have them, and the
    behaviours seen (`grid._long_run_metrics`); empty for a store from before them."""
    row: dict[str, Any] = {}
    for name in LONG_RUN_NUMBERS:
        values = [float(c[name]) for c in cells if c.get(name) is not None]
        if values:
            row[name] = float(np.mean(values))
    kinds = sorted({str(c["long_run"]) for c in cells if c.get("long_run")})
    if kinds:
        row["long_run"] = " / ".join(kinds)
    return row


def attractor_verdict(row: dict[str, Any]) -> tuple[bool, str] | None:
    """Whether a leaderboard row's model reproduces the attractor (the rule above
    `ATTRACTOR_SPECTRUM_DISTANCE`), and if not why, in a few words; `None` without long-run
    numbers."""
    kind, distance = row.get("long_run"), row.get("power_spectrum_distance")
    if kind == "diverges":
        return False, kind
    if kind is None or distance is None:
        return None
    true_lam = row.get("system_lyapunov_exponent", row.get("lyapunov_exponent"))
    chaotic = true_lam is not None and true_lam > 0
    if kind not in (("bounded aperiodic",) if chaotic else ("bounded aperiodic", "cycle")):
        return False, kind
    lam = row.get("model_lyapunov_exponent")
    if lam is not None and true_lam is not None and (lam > 0) != (true_lam > 0):
        return False, f"λ₁ {_g(lam)}"
    if distance > ATTRACTOR_SPECTRUM_DISTANCE:
        return False, f"power-spectrum distance {_g(distance, 2)}"
    return True, ""


def _ratio(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _g(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"


def table_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Column titles and text cells of one leaderboard (also used by `diffdyn results`)."""
    lead = next((r["nrmse_lead_time"] for r in rows if r["status"] == "ok"), None)
    unit = next((r["vpt_unit"] for r in rows if r["status"] == "ok"), "")
    head = [
        "rank",
        "model",
        f"VPT ({unit})" if unit else "VPT",
        f"NRMSE @ t={lead:g}" if lead is not None else "NRMSE",
        "sMAPE %",
        "train s",
        "params",
        "λ₁ model",
        "spectrum err",
        "PSD dist",
        "long run",
        "status",
    ]
    body = []
    for rank, r in enumerate(rows, 1):
        if r["status"] == "ok":
            status = (
                "ok"
                if r["ok_seeds"] == r["seeds"]
                else f"{r['seeds'] - r['ok_seeds']} seed(s) failed: {r['reason']}"
            )
            if r["note"]:
                status += f" ({r['note']})"
            body.append(
                [
                    str(rank),
                    r["model"],
                    f"{_g(r['vpt_mean'])} ± {_g(r['vpt_std'], 2)}",
                    _g(r["nrmse_lead"]),
                    _g(r["smape"]),
                    _g(r["train_seconds"]),
                    str(r["parameters"]),
                    *_long_run_cells(r),
                    status,
                ]
            )
        else:
            body.append(["—", r["model"], *["—"] * 9, f"failed: {r['reason']}"])
    return head, body


def _long_run_cells(r: dict[str, Any]) -> list[str]:
    lam, error = r.get("model_lyapunov_exponent"), r.get("spectrum_error")
    distance = r.get("power_spectrum_distance")
    return [
        "—" if lam is None else _g(lam),
        "—" if error is None else f"{_ratio(100 * error)} %",
        "—" if distance is None else _g(distance, 2),
        r.get("long_run", "—"),
    ]


def _attractor_sentence(ok: list[dict[str, Any]]) -> str | None:
    judged = [(r, attractor_verdict(r)) for r in ok]
    judged = [(r, verdict) for r, verdict in judged if verdict is not None]
    if not judged:
        return None
    yes = [r for r, (good, _) in judged if good]
    no = [(r, why) for r, (good, why) in judged if not good]
    true_lam = next(
        (r["system_lyapunov_exponent"] for r, _ in judged if "system_lyapunov_exponent" in r),
        None,
    )
    rule = (
        f"bounded and aperiodic, λ₁ > 0 like the system's {_g(true_lam)}"
        if true_lam is not None and true_lam > 0
        else "bounded, λ₁ of the system's sign"
    )
    text = (
        f"Long closed-loop runs (criterion: {rule}, power-spectrum distance ≤ "
        f"{ATTRACTOR_SPECTRUM_DISTANCE:g}): "
    )
    if yes:
        text += ", ".join(
            f"{r['model']} (λ₁ {_g(r['model_lyapunov_exponent'])})"
            if r.get("model_lyapunov_exponent") is not None
            else r["model"]
            for r in yes
        )
        text += " also reproduce" if len(yes) > 1 else " also reproduces"
        text += " the attractor"
    else:
        text += "no model reproduces the attractor"
    if no:
        text += "; " + ", ".join(f"{r['model']} ({why})" for r, why in no)
        text += " do not" if len(no) > 1 else " does not"
    return text + "."


def recommendation(dataset: str, rows: list[dict[str, Any]]) -> str:
    """Plain words drawn only from the measured numbers of one dataset's leaderboard."""
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r["model"] for r in rows if r["status"] != "ok"]
    if not ok:
        return f"On {dataset}, every model failed ({', '.join(failed)}); see the reasons above."
    best = ok[0]
    unit = best["vpt_unit"]
    parts = [
        f"On {dataset}, {best['model']} forecast longest: {_g(best['vpt_mean'])} {unit} "
        f"(± {_g(best['vpt_std'], 2)}) before its NRMSE exceeded the threshold, after "
        f"{_g(best['train_seconds'])} s of training."
    ]
    if best.get("censored"):
        parts.append(
            f"{best['censored']} of its forecasts stayed valid over the whole evaluated "
            "horizon, so this is a lower bound."
        )
    if len(ok) > 1:
        second = ok[1]
        parts.append(f"Next was {second['model']} with {_g(second['vpt_mean'])} {unit}.")
        if best["vpt_mean"] - best["vpt_std"] <= second["vpt_mean"] + second["vpt_std"]:
            parts.append("Their spreads overlap, so the ranking of these two is not certain.")
    base = next((r for r in ok if r["model"] == "persistence"), None)
    if base is not None and base is not best and base["vpt_mean"] > 0:
        parts.append(
            f"The persistence baseline reached {_g(base['vpt_mean'])} {unit}; "
            f"{best['model']} forecast {_ratio(best['vpt_mean'] / base['vpt_mean'])}× longer."
        )
    slower = [r for r in ok[1:] if r["train_seconds"] > best["train_seconds"] > 0]
    faster = [r for r in ok[1:] if 0 < r["train_seconds"] < best["train_seconds"]]
    if slower:
        other = slower[0]
        parts.append(
            f"{best['model']} trained {_ratio(other['train_seconds'] / best['train_seconds'])}× "
            f"faster than {other['model']} ({_g(other['train_seconds'])} s), the best of the "
            "slower-training models."
        )
    elif faster:
        other = faster[0]
        parts.append(
            f"{other['model']} trained {_ratio(best['train_seconds'] / other['train_seconds'])}× "
            f"faster ({_g(other['train_seconds'])} s) and reached {_g(other['vpt_mean'])} {unit}."
        )
    attractor = _attractor_sentence(ok)
    if attractor:
        parts.append(attractor)
    if failed:
        parts.append(f"Failed: {', '.join(failed)}.")
    return " ".join(parts)


def _curve_figure(dataset: str, rows: list[dict[str, Any]], threshold: float | None) -> bytes:
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    lyapunov = None
    for r in rows:
        if r["status"] != "ok":
            continue
        curve = np.asarray(r["curve"])
        lam = r.get("lyapunov_exponent")
        steps = np.arange(1, len(curve) + 1) * r["dt"]
        if lam:
            steps, lyapunov = steps * lam, True
        ax.plot(steps, curve, label=r["model"], lw=1.4)
    if threshold is not None:
        ax.axhline(threshold, color="0.4", ls="--", lw=1, label=f"ε = {threshold:g}")
    ax.set_xlabel("lead time (Lyapunov times)" if lyapunov else "lead time")
    ax.set_ylabel("NRMSE (mean over start points)")
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if high > 10:  # a diverged forecast would squash every other curve
        ax.set_ylim(max(low, 1e-6), 10)
        ax.text(0.01, 0.98, "clipped at NRMSE 10", transform=ax.transAxes, va="top", fontsize=7)
    ax.set_title(f"{dataset}: forecast error against lead time")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, ncol=2)
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _forecast_figure(store: ResultsStore, dataset: str, model: str) -> bytes | None:
    """PNG bytes of the forecast the grid kept of `model` (its lowest seed) against the truth,
    or `None` when the store holds none (a run from before the grid kept them)."""
    stored = store.artifact(dataset, model, FORECAST)
    if stored is None:
        return None
    kept = Forecast.from_json(stored)
    figure = plot_forecast(kept.context, kept.forecast, kept.truth, title=f"{model} on {dataset}")
    return _png(figure)


def _attention_figure(store: ResultsStore, dataset: str, model: str) -> tuple[bytes, str] | None:
    """PNG bytes of the alignment the grid kept of `model` on its first test window, and a
    caption; `None` when the store holds none."""
    stored = store.artifact(dataset, model, ATTENTION)
    if stored is None:
        return None
    result = Explanation.from_json(stored)
    assert result.attention is not None  # kept only for models with attention (`grid._artifacts`)
    figure = plot_attention(
        result.attention,
        input_attention=result.input_attention,
        variable_names=list(result.driving_series),
        memory_attention=result.memory_attention,
        block_length=result.block_length,
        title=f"{model} attention on {dataset}, first test window",
    )
    peak, heaviest = result.peaks[0], result.ranked_lags()[0]
    caption = (
        f"Where {model} looks on the first test window of {dataset} (context "
        f"{result.context}, horizon {result.horizon}): its first forecast step puts "
        f"{peak.weight:.3g} of its weight on lag {peak.lag} (1 = the most recent "
        f"observation); over all steps, lag {heaviest.lag} gets the most "
        f"({heaviest.weight:.3g})."
    )
    return _png(figure), caption


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclasses.dataclass(frozen=True)
class Report:
    """The files `write_report` wrote: `markdown` (report.md) and `html` (report.html)."""

    markdown: Path
    html: Path

    def to_json(self) -> dict[str, str]:
        return {"markdown": str(self.markdown), "html": str(self.html)}


@dataclasses.dataclass(frozen=True)
class Leaderboard:
    """One dataset's ranking as text: column titles `head`, one row of cells per model in
    `body` (best VPT first, failed models last), and the `recommendation` in words."""

    dataset: str
    head: list[str]
    body: list[list[str]]
    recommendation: str


def read_leaderboards(run_dir: str | Path) -> list[Leaderboard]:
    """The leaderboards of a compare run folder (or of its store file), one per dataset (what
    `diffdyn results` prints); the store is opened read-only."""
    with ResultsStore(store_path(run_dir), create=False) as store:
        boards = leaderboards(store)
    return [
        Leaderboard(dataset, *table_rows(rows), recommendation(dataset, rows))
        for dataset, rows in boards.items()
    ]


def write_report(run_dir: str | Path) -> Report:
    """Write `report.md`, `report.html` and the figures of the run in `run_dir`, from what the
    grid stored (nothing is simulated or forecast again).

    **Example:**

    ```python
    from diffdyn.compare import write_report

    paths = write_report("runs/demo")  # Report(markdown=..., html=...)
    ```
    """
    run_dir = Path(run_dir)
    with ResultsStore(run_dir / STORE_FILE, create=False) as store:
        return _write_report(run_dir, store)


def _write_report(run_dir: Path, store: ResultsStore) -> Report:
    info = store.run_info() or {}
    boards = leaderboards(store)
    config = info.get("config", {})
    threshold = config.get("threshold")
    figures = run_dir / FIGURES_FOLDER
    figures.mkdir(exist_ok=True)
    md = [
        "# diffdyn compare report",
        "",
        f"Models: {', '.join(config.get('models', []))}. Seeds: {config.get('seeds')}. "
        f"Training budget per model: {config.get('budget_per_model')} s. VPT threshold "
        f"ε = {threshold}. diffdyn {info.get('diffdyn_version')}, JAX {info.get('jax_version')}.",
        "",
        "VPT (valid prediction time): how long a closed-loop forecast stays within NRMSE ε of "
        "the truth, mean ± std over start points and seeds, on data not used for training.",
        "",
    ]
    body = [
        "<h1>diffdyn compare report</h1>",
        f"<p>{html.escape(md[2])}</p>",
        f"<p>{html.escape(md[4])}</p>",
    ]
    protocol = _protocol_section(store)
    md += protocol
    body += _markdown_html(protocol)
    if not boards:
        md.append("No finished cells yet.")
        body.append("<p>No finished cells yet.</p>")
    for dataset, rows in boards.items():
        head, cells = table_rows(rows)
        advice = recommendation(dataset, rows)
        png = _curve_figure(dataset, rows, threshold)
        name = f"nrmse-{_safe(dataset)}.png"
        atomic_write(figures / name, lambda f, png=png: f.write(png))
        md += [f"## {dataset}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells]
        md += ["", f"![NRMSE against lead time on {dataset}]({FIGURES_FOLDER}/{name})", ""]
        forecasts = []
        ok_rows = [r for r in rows if r.get("status") == "ok"]
        for row in ok_rows[:2]:  # the two best models
            fpng = _forecast_figure(store, dataset, row["model"])
            if fpng is None:
                continue
            fname = f"forecast-{_safe(dataset)}-{_safe(row['model'])}.png"
            atomic_write(figures / fname, lambda f, fpng=fpng: f.write(fpng))
            forecasts.append((row["model"], fpng))
            md += [f"![{row['model']} forecast on {dataset}]({FIGURES_FOLDER}/{fname})", ""]
        # The best-ranked model with attention: where it looks, on one test window.
        best, attention = None, None
        for row in ok_rows:
            attention = _attention_figure(store, dataset, row["model"])
            if attention is not None:
                best = row
                break
        if best is not None and attention is not None:
            apng, caption = attention
            aname = f"attention-{_safe(dataset)}-{_safe(best['model'])}.png"
            atomic_write(figures / aname, lambda f, apng=apng: f.write(apng))
            md += [
                f"![{best['model']} attention on {dataset}]({FIGURES_FOLDER}/{aname})",
                "",
                caption,
                "",
            ]
        md += [f"**Recommendation.** {advice}", ""]
        halving = halving_rounds_text(store, dataset)
        if halving:
            md += [halving, ""]
            body.append(f"<p>{html.escape(halving)}</p>")
        table = "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        table += "</tr></thead><tbody>"
        for row in cells:
            table += "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        table += "</tbody></table>"
        data = base64.b64encode(png).decode("ascii")
        body += [
            f"<h2>{html.escape(dataset)}</h2>",
            table,
            f'<img alt="NRMSE against lead time on {html.escape(dataset)}" '
            f'src="data:image/png;base64,{data}">',
        ]
        for model_name, fpng in forecasts:
            encoded = base64.b64encode(fpng).decode("ascii")
            body.append(
                f'<img alt="{html.escape(model_name)} forecast on {html.escape(dataset)}" '
                f'src="data:image/png;base64,{encoded}">'
            )
        if best is not None and attention is not None:
            encoded = base64.b64encode(attention[0]).decode("ascii")
            body += [
                f'<img alt="{html.escape(best["model"])} attention on {html.escape(dataset)}" '
                f'src="data:image/png;base64,{encoded}">',
                f"<p>{html.escape(attention[1])}</p>",
            ]
        body.append(f"<p><strong>Recommendation.</strong> {html.escape(advice)}</p>")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>diffdyn compare report</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:.25em .6em;text-align:right}td:nth-child(2),th:nth-child(2),td:last-child"
        "{text-align:left}img{max-width:100%}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    markdown = atomic_write(run_dir / "report.md", lambda f: f.write("\n".join(md).encode()))
    page_path = atomic_write(run_dir / "report.html", lambda f: f.write(page.encode()))
    return Report(markdown, page_path)
