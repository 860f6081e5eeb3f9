"""The ``multivector`` command line (Typer + Rich).

Every command turns an :class:`~multivector.errors.InputError` into one readable line on stderr and
exit status 2, with no traceback; output files are written only after the computation succeeded.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.markup import escape

from multivector.dataset import default_dataset
from multivector.views.document import RUN_BOTTLENECKS, RUN_GATEWAYS, RUN_SEEDS
from multivector.errors import ConvergenceWarning, InputError, MissingDependency, MultivectorError
from multivector.interfaces.encode import json_safe

DEFAULT = default_dataset()
SCENARIO_HELP = "built-in dataset name or dataset folder"

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="multivector: a middle power's freight corridors and statecraft as one systems model.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect, check and copy datasets.")
app.add_typer(data_app, name="data")
export_app = typer.Typer(no_args_is_help=True, help="Export a model or results to other tools' formats.")
app.add_typer(export_app, name="export")
out = Console()
if not out.is_terminal:  # piped or captured: wide enough for the trajectory tables
    out = Console(width=160)
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _process() -> None:
    """Every command runs in a process that simulates: keep freed memory for reuse (glibc)."""
    from multivector import io

    io.retain_freed_memory()


def guarded(fn):
    """Report InputError (and a few OS errors) as one line and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                result = fn(*args, **kwargs)
            for w in caught:
                if issubclass(w.category, ConvergenceWarning):
                    err.print(f"[yellow]warning:[/] {escape(str(w.message))}")
            return result
        except (InputError, MissingDependency) as exc:     # escaped: "[history]" is text, not markup
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        except MultivectorError as exc:  # e.g. a simulation that produced NaN: say where, exit 1
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None
        except OSError as exc:                # a missing file, a full disk, a read-only folder, a lost connection
            err.print(f"[bold red]error:[/] {escape(str(exc.strerror or exc))}"
                      + (f": {escape(str(exc.filename))}" if getattr(exc, "filename", None) else ""), highlight=False)
            raise typer.Exit(2) from None
        except (KeyboardInterrupt, typer.Exit, SystemExit):
            raise
        except Exception as exc:              # a bug: one line, not a traceback, unless asked for
            if os.environ.get("MULTIVECTOR_DEBUG"):
                raise
            err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} — please report it; "
                      "MULTIVECTOR_DEBUG=1 shows the traceback", highlight=False)
            raise typer.Exit(3) from None

    return wrapper


class _Bar:
    """The callback a :func:`progress_bar` yields: call it with ``(done, total)``; ``describe`` renames it."""

    def __init__(self, bar, task, description: str, unit: str, line: str | None, resumable: bool):
        self.bar, self.task, self.description, self.unit, self.line = bar, task, description, unit, line
        # the rate counts from the first report when it gives what an earlier process did
        self.first: tuple[float, int] | None = None if resumable else (time.perf_counter(), 0)

    def describe(self, text: str, total: int | None = None) -> None:
        self.description = text
        self.bar.update(self.task, description=text, **({} if total is None else {"total": total}))

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first = (time.perf_counter(), done)
        t, d = self.first
        rate = (done - d) / max(time.perf_counter() - t, 1e-9)
        shown = f"{rate:,.1f}" if done > d else "–"
        self.bar.update(self.task, completed=done, total=total, rate=shown)
        if self.line and not err.is_terminal and done > d:  # a log line per step when there is no live bar
            print(self.line.format(description=self.description, done=done, total=total, unit=self.unit,
                                   rate=shown), file=sys.stderr, flush=True)


_noticed = False


def _first_run_notice() -> None:
    """Once per process, on a machine whose Numba cache lacks the route choice's compiled kernel: say that
    the first year will wait for the compiler, so that a bar standing at 0 for 30 s is not taken for a hang."""
    global _noticed
    from multivector.freight.sue import kernels_cached

    if not _noticed and kernels_cached() is False:
        err.print("First run on this machine (or after an update): compiling the model's kernels, about 30 s on two cores, once.")
    _noticed = True


@contextlib.contextmanager
def progress_bar(description: str, unit: str, *, quiet: bool = False, resumable: bool = False,
                 line: str = "{description}: {done:,}/{total:,} {unit} ({rate} {unit}/s)"):
    """The one progress display of long commands: a Rich bar on stderr with the rate and the time left,
    yielding a ``(done, total)`` callback for the library's ``progress=``.

    When stderr is not a terminal (a log, CI) a plain ``line`` per step goes there instead of the bar.
    ``quiet`` (``--json``) shows neither: a command asked for JSON writes only its document (stdout)
    and errors or warnings (stderr), so ``2>&1`` still parses. Nothing goes to stdout. ``resumable``:
    the first report counts work done before (a resumed exploration), so the rate starts after it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if not quiet:
        _first_run_notice()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn(f"{{task.fields[rate]}} {unit}/s"), TimeRemainingColumn(), console=err,
                  disable=quiet or not err.is_terminal, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(description, total=None, rate="–")
        yield _Bar(bar, task, description, unit, None if quiet else line, resumable)


def parse_years(text: str) -> list[int]:
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            first, last = int(a), int(b)
        else:
            first = last = int(text)
    except ValueError:
        raise InputError(f"--years '{text}' is not YEAR or FIRST:LAST", hint="e.g. --years 2024:2030") from None
    if last < first:
        raise InputError(f"--years '{text}': the last year is before the first")
    return list(range(first, last + 1))


def parse_sets(items: list[str] | None) -> dict[str, float]:
    values = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--set '{item}' is not NAME=VALUE", hint="e.g. --set logit_scale_container=0.002")
        name, text = (x.strip() for x in item.split("=", 1))
        if not name:
            raise InputError(f"--set '{item}' names no parameter", hint="e.g. --set logit_scale_container=0.002")
        try:
            values[name] = float(text)
        except ValueError:
            raise InputError(f"--set {name}: '{text}' is not a number") from None
    return values


def parse_events(items: list[str] | None) -> dict[tuple[str, int], float]:
    events = {}
    for item in items or []:
        parts = item.split(":")
        try:
            name, year, share = parts[0].strip(), int(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise InputError(f"--event '{item}' is not NAME:YEAR:SHARE", hint="e.g. --event cpc_outage:2025:0.34") \
                from None
        if len(parts) != 3 or not name:
            raise InputError(f"--event '{item}' is not NAME:YEAR:SHARE", hint="e.g. --event cpc_outage:2025:0.34")
        events[(name, year)] = events.get((name, year), 0.0) + share
    return events


def _load(scenario: str):
    from multivector.dataset import load

    return load(scenario)


# ------------------------------------------------------------------------------------------------

@app.command()
@guarded
def run(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP),
        years: Optional[str] = typer.Option(None, help="YEAR or FIRST:LAST (default: the base year)"),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="override a parameter: NAME=VALUE"),
        json_: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
        out_dir: Optional[Path] = typer.Option(None, "--out", help="write a PNG map of link flows here"),
        top: int = typer.Option(RUN_BOTTLENECKS, help="how many bottlenecks to list"),
        gateways: bool = typer.Option(False, "--gateways", help="list every border crossing and port with "
                                      "flow in the last year (default: the focus country's)"),
        seed: int = typer.Option(0, help="seed of the random disruption stream"),
        event: Optional[list[str]] = typer.Option(None, "--event",
                                                  help="place an outage: NAME:YEAR:SHARE (e.g. cpc_outage:2025:0.34)"),
        seeds: int = typer.Option(RUN_SEEDS, min=1, max=10_000,
                                  help="runs with their own disruption streams; the verdict is a probability over them"),
        network_only: bool = typer.Option(False, "--network-only", help="solve the freight network alone"),
        tol: Optional[float] = typer.Option(None, help="route-choice gap to reach (default 1e-6)")):
    """Simulate a scenario and print corridor volumes, shares, bottlenecks and, with a political
    register, the trajectory of its headline index."""
    from multivector.model import simulate
    from multivector.model.compiled import PASS_RUNS
    from multivector.model.history import history_years
    from multivector.views.document import run_document

    s = _load(scenario)
    overrides = parse_sets(set_)
    s.check_names(overrides)
    coupled = s.politics is not None and not network_only
    yrs = parse_years(years) if years else (None if coupled else [s.base_year])
    history = history_years(s, yrs) if coupled else []
    if history:                                  # the history may reach back before the network's demand
        from multivector.dataset.scenario import network_years

        first = network_years(s)[0]
        if yrs[-1] < first:
            raise InputError(f"--years {yrs[0]}:{yrs[-1]} lies before the network's first year ({first})",
                             hint=f"reach {first} or later, e.g. --years {yrs[0]}:{first}: the political "
                                  f"history ({history[0]}-{history[-1]}) is shown beside the network's years")
        yrs = [y for y in yrs if y >= first]
    if tol is not None and not 0 < tol < 1:
        raise InputError("--tol must lie between 0 and 1")
    n = seeds if coupled and s.politics.disruption else 1      # without randomness one run says it all
    passes = -(-n // PASS_RUNS)                                  # a larger batch runs in passes (years count per pass)
    label = f" ({n:,} runs" + (f" in {passes} passes" if passes > 1 else "") + ")" if n > 1 else ""
    with progress_bar(f"simulating {s.name}{label}", "years", quiet=json_) as bar:
        ds = simulate(s, n, overrides=overrides, years=yrs, keep_routes=out_dir is not None, seed=seed,
                      coupled=None if coupled else False, tol=tol, events=parse_events(event), progress=bar)
    yrs = [int(y) for y in ds["year"].values]
    doc = run_document(ds, top=top)
    if history:
        from multivector.model.history import history_trajectory
        from multivector.views.document import history_document

        doc["history"] = history_document(history_trajectory(s, seed=seed), history)
    written = []
    if out_dir is not None:
        from multivector.views.plotting import write_run_folder

        written = write_run_folder(s, ds, doc, out_dir)
    if json_:
        _print_json(doc)
        return
    if history:
        _print_history(s, doc["history"])
        if yrs[0] > history[0]:
            out.print(f"(the network's demand starts in {yrs[0]}: the tables below begin there)")
    _print_run(s, ds, doc, all_gateways=gateways)
    for p in written:
        out.print(f"wrote {p}")


def _print_history(s, hist: dict) -> None:
    """The history run's compared variables per year, each observation beside the model."""
    from multivector.views.tables import beside

    names = list(hist["variables"])
    how = "median of the history posterior's draws" if s.history_posterior_samples is not None else "stated constants"
    t = Table(title=f"{s.name}: the political register over its observed years (history run; {how})",
              title_justify="left")
    for col in ("year", *names):
        t.add_column(col, justify="right")
    for i, y in enumerate(hist["years"]):
        cells = []
        for name in names:
            v = hist["variables"][name]
            cells.append(beside(v["median"][i], v["observed"][i], ".3g"))
        t.add_row(str(y), *cells)
    out.print(t)


def _fmt(x, spec=",.0f"):
    """``x`` formatted, or a dash where it is missing (None or NaN: a relative error of an observed zero)."""
    return "–" if x is None or x != x else format(x, spec)


def _print_verdict(s, ds, doc):
    """The verdict in words: the test, P(consolidated) over disruption streams and over the test's own
    definition, and the index against the counterfactual."""
    from multivector.views.tables import definition_turns, verdict_values

    index = ds.attrs.get("index")
    v = verdict_values(s, ds)
    if "consolidated" not in doc or not v:
        return
    cf = doc.get("counterfactual")
    if cf:
        test = (f"{s.index_label} ≥ '{cf['label']}' + {v['threshold']:g} in {v['year']}, "
                f"and ≥ it + {v['floor']:g} after")
    else:
        test = f"{s.index_label} ≥ {v['threshold']:g} in {v['year']}, and ≥ {v['floor']:g} after"
    if "p_consolidated" not in doc:
        verdict = "[green]yes[/]" if doc["consolidated"] is True else "[red]no[/]"
        out.print(f"Consolidated ({test}): {verdict}   seed {doc['seed']}")
    else:
        lo, hi = doc["p_consolidated_interval"]
        out.print(f"Consolidated ({test}): P = {doc['p_consolidated']:.0%} [{lo:.0%}–{hi:.0%}] over "
                  f"{doc['runs']} disruption streams (seed {doc['seed']})")
    if "p_consolidated_over_definitions" in doc:
        out.print(f"  over the test's own definition ({doc['definition_draws']} draws of the index's weights, "
                  f"the margin, the floor and the year within their ranges): P = "
                  f"{doc['p_consolidated_over_definitions']:.0%}")
        turns = definition_turns(s, doc.get("p_consolidated_by_definition", {}))
        if turns:
            out.print("  it turns most on " + "; ".join(
                f"{name} (P = {low:.0%} in the lower half of {lo:g}–{hi:g}, {high:.0%} in the upper)"
                for name, lo, hi, low, high in turns))
    last = doc["years"][-1]
    line = f"  {s.index_label} in {last}: median {doc[index][-1]:.3f}"
    if "index_band" in doc:
        band = doc["index_band"]
        line += f" (5–95% {band['p5'][-1]:.3f}–{band['p95'][-1]:.3f})"
    if cf:
        line += f"; '{cf['label']}' {cf[index][-1]:.3f}, gain {cf['gain'][-1]:+.3f}"
    out.print(line)


#: How ``multivector run`` abbreviates a direction in its gateway table's headers.
DIRECTION_ABBREVIATION = {"westbound": "W", "eastbound": "E", "northbound": "N", "southbound": "S"}


def _print_gateways(doc, focus: tuple[str, str] | None = None):
    """The gateways that handle freight in the last year, busiest first: tonnes and TEU in all and by
    direction of travel. With ``focus`` (country code, name) only the focus country's gateways (a
    border crossing lists both countries), or the :data:`RUN_GATEWAYS` busiest if it has none with
    flow; without, every gateway with flow."""
    i = len(doc["years"]) - 1
    rows = [(gid, g) for gid, g in doc.get("gateways", {}).items() if (g["tonnes"][i] or 0) > 0]
    if not rows:
        return
    rows.sort(key=lambda r: -r[1]["tonnes"][i])
    title = f"Gateways in {doc['years'][i]}: freight handled by direction of travel"
    shown = rows
    if focus is not None:
        code, name = focus
        shown = [r for r in rows if code in r[1]["country"].split("/")]
        if shown:
            title = f"{name}'s gateways in {doc['years'][i]}: freight handled by direction of travel"
        else:
            shown = rows[:RUN_GATEWAYS]
            title += f" (the {len(shown)} busiest)"
        if len(shown) < len(rows):
            title += f"; --gateways lists all {len(rows)} with flow"
    directions = [d for d in DIRECTION_ABBREVIATION if any(d in g["directions"] for _, g in shown)]
    t = Table(title=title, title_justify="left")
    t.add_column("gateway", justify="left", max_width=30, no_wrap=True, overflow="ellipsis")
    t.add_column("kind", justify="left")
    for col in ("Mt", "TEU"):
        t.add_column(col, justify="right")
    for d in directions:
        t.add_column(f"{DIRECTION_ABBREVIATION[d]} Mt", justify="right")
        t.add_column(f"{DIRECTION_ABBREVIATION[d]} TEU", justify="right")
    for gid, g in shown:
        cells = [g["name"], g["kind"], _fmt(g["tonnes"][i] / 1e6, ",.2f"), _fmt(g["teu"][i])]
        for d in directions:
            v = g["directions"].get(d)
            cells += ["", ""] if v is None else [_fmt(v["tonnes"][i] / 1e6, ",.2f"), _fmt(v["teu"][i])]
        t.add_row(*cells)
    out.print(t)
    out.print("W/E/N/S: westbound, eastbound, northbound, southbound — from the place before the gateway "
              "to the place after it on each route")


def _print_run(s, ds, doc, all_gateways: bool = False):
    """The run's tables; where a figure was observed (a calibration target, or an observations.csv row
    that names an output) the observation is shown beside the model."""
    from multivector.dataset.scenario import DIRECTIONS
    from multivector.views.tables import beside, focus_rows
    from multivector.views.validation import observed_points

    years = doc["years"]
    # a corridor's series under nested keys in year i (None where the run has no such series)
    series = lambda c, i, *keys: (functools.reduce(lambda d, k: d.get(k, {}), keys, c) or [None] * len(years))[i]
    observed = observed_points(s)
    # where the dataset observes one commodity's time on its corridors, that commodity's time takes the
    # place of the corridor's mean, which weighs bulk's TEU-equivalents in with the boxes
    timed = sorted({path.split(".")[3] for path, _ in observed if ".transit_time_h_by_commodity." in path})
    time_columns = [f"{k} h" for k in timed] or ["transit h"]
    index = ds.attrs.get("index")
    if index:
        header, rows = focus_rows(s, doc, observed)
        t = Table(title=f"{s.model.get('title', s.name)} — coupled trajectory", title_justify="left")
        for name in header:
            t.add_column(name, justify="right")
        for row in rows:
            t.add_row(*row)
        out.print(t)
        shown = [len(years) - 1]
    else:
        shown = range(len(years))
    for i in shown:
        y = years[i]
        t = Table(title=f"{s.model.get('title', s.name)} — {y}", title_justify="left")
        ways = [d for d in DIRECTIONS                       # the directions some corridor carries
                if any(series(c, i, "directions", d, "teu") for c in doc["corridors"].values())]
        for col in ("corridor", "TEU", *(f"{d[0].upper()} TEU" for d in ways), "tonnes", "share of TEU", *time_columns,
                    "cost USD/unit"):
            t.add_column(col, justify="right" if col != "corridor" else "left")
        for name, c in doc["corridors"].items():
            if not (c["teu"][i] or c["tonnes"][i]):
                continue
            cell = lambda key: beside(c[key][i], observed.get((f"corridors.{name}.{key}", y)), ",.0f")
            way = lambda d: beside(series(c, i, "directions", d, "teu"),
                                   observed.get((f"corridors.{name}.directions.{d}.teu", y)), ",.0f")
            timing = lambda k: beside(series(c, i, "transit_time_h_by_commodity", k), observed.get(
                (f"corridors.{name}.transit_time_h_by_commodity.{k}", y)), ",.0f")
            times = [timing(k) for k in timed] or [cell("transit_time_h")]
            t.add_row(name, cell("teu"), *(way(d) for d in ways), cell("tonnes"), _fmt(c["share"][i], ".1%"),
                      *times, _fmt(c["cost_usd"][i], ",.0f"))
        out.print(t)
        share = doc["focus_overland_share"][i]
        share_t = doc["focus_overland_share_tonnes"][i]
        out.print(f"{s.focus.name}'s share of overland freight on its corridors: {_fmt(share, '.1%')} of TEU, "
                  f"{_fmt(share_t, '.1%')} of tonnes")
        boxes = beside(doc["focus_transit_teu"][i], observed.get(("focus_transit_teu", y)), ",.0f")
        mt = lambda v: None if v is None else v / 1e6
        tonnes = beside(mt(doc["focus_transit_tonnes"][i]), mt(observed.get(("focus_transit_tonnes", y))), ",.1f")
        out.print(f"In transit through {s.focus.name} (every origin and destination abroad): {boxes} TEU, "
                  f"{tonnes} Mt")
        lost = [r for r in doc.get("unserved_by_od", []) if (r["volume"][i] or 0) > 0]
        if lost:
            units = {c: m.unit for c, m in s.commodities.items()}
            out.print("Not shipped (capacity): " + "; ".join(
                f"{r['origin']}→{r['destination']} {r['commodity']} {_fmt(r['volume'][i], ',.3g')} {units[r['commodity']]}"
                for r in sorted(lost, key=lambda r: -r["volume"][i])[:5]) + (f" (+{len(lost) - 5} more)" if len(lost) > 5 else ""))
        conv = doc["convergence"]
        state = "converged" if conv["converged"][i] else "[yellow]NOT converged[/]"
        out.print(f"Route choice: relative gap {conv['gap'][i]:.1e} after {conv['iterations'][i]} "
                  f"iterations ({state})")
    _print_verdict(s, ds, doc)
    from multivector.views.tables import index_change, index_gain

    change = index_change(ds)
    if change is not None:
        first, last = change.attrs["years"]
        parts = ", ".join(f"{r.component.replace('_', ' ')} {r.change:+.3f}" for r in change.itertuples())
        out.print(f"{s.index_label} {first}→{last}: {change.attrs['total']:+.3f} = {parts}")
    gain = index_gain(s, ds)
    if gain is not None:
        parts = ", ".join(f"{r.component.replace('_', ' ')} {r.gain:+.3f}" for r in gain.itertuples())
        out.print(f"gain over '{gain.attrs['counterfactual']}' in {gain.attrs['year']}: {gain.attrs['total']:+.3f} "
                  f"= {parts}")
    _print_gateways(doc, None if all_gateways else (s.focus.country, s.focus.name))
    t = Table(title="Top bottlenecks by utilisation", title_justify="left")
    for col in ("facility", "year", "utilisation", "years full", "flow Mt", "delay h"):
        t.add_column(col, justify="left" if col == "facility" else "right")
    for b in doc["bottlenecks"]:
        t.add_row(b["label"], str(b["year"]), f"{b['utilisation']:.0%}", str(b["years_full"]),
                  f"{b['flow_mt']:.2f}", f"{b['delay_h']:.1f}")
    out.print(t)


@app.command()
@guarded
def check(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP),
          pairs: Optional[int] = typer.Option(None, help="paired futures per direction check (default: checks.toml)"),
          seed: int = typer.Option(0, help="seed of the futures and of their random streams"),
          scan: bool = typer.Option(True, help="also scan every parameter and lever for dead ones"),
          json_: bool = typer.Option(False, "--json")):
    """Evaluate the dataset's declared reality checks on paired runs, and list dead parameters.

    Exits 1 when a check fails or a parameter is dead."""
    from multivector.explore.checks import run_checks

    s = _load(scenario)
    with progress_bar(f"checking {s.name}", "runs", quiet=json_) as bar:
        report = run_checks(s, pairs=pairs, seed=seed, scan=scan, progress=bar)
    if json_:
        _print_json({"scenario": s.name, "passed": report.passed, "pairs": report.pairs, "runs": report.runs,
                     "seed": report.seed, "checks": report.table().to_dict(orient="records"),
                     "dead_parameters": report.dead})
    else:
        t = Table(title=f"Reality checks of {s.name} ({report.pairs} paired futures, {report.runs:,} runs, "
                        f"seed {seed})", title_justify="left")
        for col in ("check", "loop", "statement", "holds", "result", "worst case"):
            t.add_column(col, overflow="fold", justify="right" if col == "holds" else "left")
        for r in report.results:
            t.add_row(r.id, r.loop, r.statement, f"{r.holds:.0%}", "[green]pass[/]" if r.passed else "[red]FAIL[/]",
                      r.worst)
        out.print(t)
        failed = sum(not r.passed for r in report.results)
        out.print(f"{len(report.results) - failed} of {len(report.results)} checks pass; dead parameters: "
                  + (", ".join(report.dead) if report.dead else "none"))
    if not report.passed:
        raise typer.Exit(1)


@app.command()
@guarded
def tntp(net: Path = typer.Argument(..., help="TNTP network file (_net.tntp)"),
         trips: Path = typer.Argument(..., help="TNTP trips file (_trips.tntp)"),
         gap: float = typer.Option(1e-4, help="relative gap to reach"),
         max_iter: int = typer.Option(1000, help="iteration limit"),
         method: str = typer.Option("bfw", help="bfw, cfw or fw"),
         out_file: Optional[Path] = typer.Option(None, "--out", help="write link flows as a TNTP flow file"),
         toll_factor: Optional[float] = typer.Option(None, help="generalised cost per unit of toll "
                                                                "(default: the file's <TOLL FACTOR>, else 0)"),
         distance_factor: Optional[float] = typer.Option(None, help="generalised cost per unit of length "
                                                                    "(default: the file's <DISTANCE FACTOR>, else 0)")):
    """Solve deterministic user equilibrium on a TNTP network (bi-conjugate Frank–Wolfe); link cost =
    time + toll factor × toll + distance factor × length."""
    from multivector.freight.ue import solve_ue
    from multivector.freight.tntp import read_network, read_trips, write_flows

    if gap <= 0:
        raise InputError("--gap must be > 0")
    if max_iter < 1:
        raise InputError("--max-iter must be at least 1")
    network = read_network(net)
    od = read_trips(trips, n_zones=network.n_zones)
    res = solve_ue(network, od, gap=gap, max_iter=max_iter, method=method, toll_factor=toll_factor,
                   distance_factor=distance_factor)
    state = "converged" if res.converged else "did NOT converge"
    out.print(f"{method.upper()}: relative gap {res.gap:.3e} after {res.iterations} iterations "
              f"({state}) in {res.seconds:.2f} s; links {len(res.flow)}")
    if out_file is not None:
        write_flows(out_file, network.init, network.term, res.flow, res.cost)
        out.print(f"wrote {out_file}")
    if not res.converged:
        raise typer.Exit(1)


@app.command()
@guarded
def calibrate(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP),
              write: bool = typer.Option(False, "--write", help="store the fit in the dataset folder"),
              json_: bool = typer.Option(False, "--json"),
              max_evaluations: int = typer.Option(40, help="least-squares evaluations per fit"),
              starts: int = typer.Option(1, "--starts", help="fit from the stored values and from N-1 points of a "
                                         "Latin hypercube over the free ranges (seeded by --seed); keep the best"),
              posterior: bool = typer.Option(False, "--posterior", help="sample the free coefficients' "
                                             "posterior (emcee) instead of the least-squares fit"),
              politics: bool = typer.Option(False, "--politics", help="sample the political register's free "
                                            "constants given its observed history ([history] in politics.toml)"),
              walkers: int = typer.Option(None, "--walkers", help="posterior: walkers (even, >= 2 x free)"),
              steps: int = typer.Option(300, "--steps", help="posterior: steps per walker (half burn-in)"),
              seed: int = typer.Option(0, "--seed", help="random seed (the posterior's walkers, the fit's starts)")):
    """Fit free coefficients to the observed volumes and times in targets.csv (up to 2024); print observed
    vs modelled. --posterior samples their posterior; --politics samples the political register's
    constants given its history."""
    from multivector.dataset import is_builtin
    from multivector.model.calibrate import calibrate as fit, write_calibration

    s = _load(scenario)
    if write:
        if is_builtin(s) and not os.environ.get("MULTIVECTOR_DEV"):
            raise InputError(f"'{scenario}' is a built-in dataset",
                             hint=f"copy it first: multivector data copy {scenario} DIR; then "
                                  "multivector calibrate DIR --write")
    if posterior and politics:
        raise InputError("--posterior and --politics sample different posteriors: give one")
    if politics:
        _calibrate_politics(s, write, json_, walkers, steps, seed)
        return
    if posterior:
        _calibrate_posterior(s, write, json_, walkers, steps, seed)
        return
    with progress_bar(f"calibrating {s.name}", "evaluations", quiet=json_) as bar:
        res = fit(s, max_nfev=max_evaluations, progress=bar, starts=starts, seed=seed)
    if json_:
        _print_json({"values": res.values, "success": res.success, "cost": res.cost, "fits": res.rounds,
                     "starts": res.starts,
                     "fit": res.table.to_dict(orient="records")})
    else:
        t = Table(title=f"Calibration of {s.name}: observed vs modelled", title_justify="left")
        for col in ("target", "metric", "year", "observed", "modelled", "miss", "band"):
            t.add_column(col, justify="left" if col in ("target", "metric") else "right")
        for r in res.table.itertuples():
            colour = "green" if r.within_error else "red"
            t.add_row(r.target, r.metric, str(r.year), _observed(r.observed, r.bound, ",.0f"), f"{r.modelled:,.0f}",
                      f"[{colour}]{r.rel_error:+.1%}[/]", f"±{r.error:.0%}")
        out.print(t)
        out.print("fitted: " + ", ".join(f"{k} = {v:.4g}" for k, v in res.values.items()))
        out.print(f"targets within their stated error: {int(res.table['within_error'].sum())} of {len(res.table)}")
        out.print(f"fits: {res.rounds} (refitted until the fit's own route set held)" if res.success
                  else f"[red]{res.message}[/]")
    if write:
        path = write_calibration(s, res, s.path)
        err.print(f"wrote {path}")


def _calibrate_politics(s, write: bool, json_: bool, walkers: int | None, steps: int, seed: int) -> None:
    from multivector.model.history import HISTORY_STEM, predictive_history, sample_history
    from multivector.model.posterior import write_posterior
    from multivector.views.tables import constant_table

    with progress_bar(f"matching {s.name}'s political history", "steps", quiet=json_) as bar:
        post = sample_history(s, walkers=walkers, steps=steps, seed=seed, progress=bar)
    fitted = predictive_history(s, post, seed=seed)
    consts = constant_table(s, s.politics.history.free, post.samples)
    if json_:
        _print_json({"constants": _records(consts), "observations": fitted.to_dict(orient="records"),
                     "provenance": post.provenance})
    else:
        _print_posterior(consts, f"Posterior of {s.name}'s political constants given {post.provenance['history']} "
                                 f"({len(post.samples):,} samples)", "stated")
        _print_predictive(fitted, "stock", "Observed stocks (year end) and flows (yearly totals) against 200 "
                                           "posterior draws, model discrepancy included (band: 5–95%)")
        out.print(f"inside: {int(fitted['within'].sum())} of {len(fitted)}; " + _diagnostics(post.provenance))
    if write:
        for path in write_posterior(post, s.path, stem=HISTORY_STEM):
            err.print(f"wrote {path}")


def _print_posterior(table, title: str, fit_label: str) -> None:
    """A coefficient table (:func:`views.tables.coefficient_table` or ``constant_table``) as a Rich table."""
    t = Table(title=title, title_justify="left")
    for col in ("coefficient", fit_label, "median", "5–95%", "range"):
        t.add_column(col, justify="left" if col == "coefficient" else "right")
    for r in table.to_dict(orient="records"):
        t.add_row(r["coefficient"], "—" if r["fit"] != r["fit"] else f"{r['fit']:.4g}",
                  f"{r['posterior median']:.4g}", f"{r['posterior p5']:.4g}–{r['posterior p95']:.4g}",
                  f"{r['prior min']:g}–{r['prior max']:g}")
    out.print(t)


def _observed(value: float, bound, spec: str) -> str:
    """An observation as printed: a ceiling (``bound`` upper) marked ``≤``, a count plain."""
    return ("≤ " if bound else "") + format(value, spec)


def _print_predictive(table, label: str, title: str) -> None:
    """Observations against a posterior's predictive band (``predictive_targets`` or ``predictive_history``),
    each row named by its ``label`` column, as a Rich table."""
    t = Table(title=title, title_justify="left")
    for col in (label, "year", "observed", "median", "5–95%", "±error", "inside"):
        t.add_column(col, justify="left" if col == label else "right")
    for r in table.to_dict(orient="records"):
        colour = "green" if r["within"] else "red"
        t.add_row(str(r[label]), str(r["year"]), _observed(r["observed"], r.get("bound"), ",.4g"),
                  f"{r['median']:,.4g}", f"{r['p5']:,.4g}–{r['p95']:,.4g}", f"{r['error']:g}" if r.get("absolute") else f"{r['error']:.0%}",
                  f"[{colour}]{'yes' if r['within'] else 'no'}[/]")
    out.print(t)


def _print_json(doc) -> None:
    """Print a document as JSON, a missing or infinite value as null (NaN is not JSON; strict parsers,
    a browser's among them, refuse it)."""
    print(json.dumps(json_safe(doc), indent=2, allow_nan=False, default=str))


def _records(table) -> list[dict]:
    """A table's rows for JSON, a missing value as null (NaN is not JSON)."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def _diagnostics(p: dict) -> str:
    return (f"acceptance {p['acceptance_fraction']:.2f}; autocorrelation up to "
            f"{max(p['autocorrelation_steps'].values()):.0f} steps; ~{p['effective_samples']:.0f} "
            f"independent samples ({p['walkers']} walkers x {p['steps']} steps, {p['burn_in']} burn-in)")


def _calibrate_posterior(s, write: bool, json_: bool, walkers: int | None, steps: int, seed: int) -> None:
    from multivector.model.posterior import predictive_targets, sample_posterior, write_posterior
    from multivector.views.tables import coefficient_table

    with progress_bar(f"sampling {s.name}'s posterior", "steps", quiet=json_) as bar:
        post = sample_posterior(s, walkers=walkers, steps=steps, seed=seed, progress=bar)
    fitted = predictive_targets(s, post, seed=seed)
    coeffs = coefficient_table(s, post.samples)
    if json_:
        _print_json({"coefficients": _records(coeffs), "targets": fitted.to_dict(orient="records"),
                     "provenance": post.provenance})
    else:
        _print_posterior(coeffs, f"Posterior of {s.name}'s free coefficients ({len(post.samples):,} samples)",
                         "stored fit")
        _print_predictive(fitted, "target", "Targets against 100 posterior draws, model discrepancy included "
                                            "(band: 5–95%)")
        out.print(_diagnostics(post.provenance))
    if write:
        for path in write_posterior(post, s.path):
            err.print(f"wrote {path}")


@app.command()
@guarded
def params(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP), json_: bool = typer.Option(False, "--json")):
    """List every parameter: default, range, unit and source."""
    s = _load(scenario)
    defaults = s.defaults()
    rows = [{"name": p.name, "kind": p.kind, "default": defaults[p.name], "min": p.min, "max": p.max,
             "unit": p.unit, "source": p.source, "description": p.description} for p in s.parameters.values()]
    if json_:
        _print_json(rows)
        return
    t = Table(title=f"Parameters and levers of {s.name} ({len(rows)})", title_justify="left")
    for col in ("name", "kind", "default", "min", "max", "unit", "source"):
        t.add_column(col, overflow="fold")
    for r in sorted(rows, key=lambda r: (r["kind"] != "lever", r["name"])):
        t.add_row(r["name"], r["kind"], f"{r['default']:.4g}", f"{r['min']:.4g}", f"{r['max']:.4g}", r["unit"],
                  r["source"])
    out.print(t)


def _politics(s):
    if s.politics is None:
        raise InputError(f"scenario '{s.name}' has no political register",
                         hint="add politics.toml to the dataset folder")
    return s.politics


@app.command()
@guarded
def loops(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP), json_: bool = typer.Option(False, "--json")):
    """List the feedback loops of the political register: stocks, polarity and the claim behind each."""
    pol = _politics(_load(scenario))
    rows = [{"name": l.name, "label": l.label, "polarity": l.polarity, "stocks": l.stocks,
             "variables": l.variables, "claim": l.claim} for l in pol.loops.values()]
    if json_:
        _print_json(rows)
        return
    t = Table(title="Feedback loops", title_justify="left", show_lines=True)
    for col in ("loop", "polarity", "stocks", "path", "claim"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(f"{r['name']} {r['label']}", r["polarity"], ", ".join(r["stocks"]),
                  " → ".join(r["variables"]), r["claim"])
    out.print(t)


@data_app.command("sources")
@guarded
def data_sources(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP), json_: bool = typer.Option(False, "--json")):
    """List the sources and stated assumptions behind a dataset's numbers."""
    s = _load(scenario)
    rows = s.sources.to_dict(orient="records")
    if json_:
        _print_json(rows)
        return
    t = Table(title=f"Sources of {s.name} ({len(rows)})", title_justify="left", show_lines=False)
    for col in ("id", "kind", "title", "year", "url / range"):
        t.add_column(col, overflow="fold")
    for r in rows:
        where = r["url"] if r["kind"] == "figure" else (f"{r['low']}–{r['high']}" if r["low"] else "")
        t.add_row(r["id"], r["kind"], r["title"], str(r["year"]), where)
    out.print(t)


@data_app.command("check")
@guarded
def data_check(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP)):
    """Validate a dataset: references, numbers, and a source for every number."""
    from multivector.dataset import count_numbers
    from multivector.model import check

    s = _load(scenario)            # raises on the first problem in the tables
    problems = check(s)
    if problems:
        for p in problems:
            err.print(f"[bold red]error:[/] {p}", highlight=False)
        raise typer.Exit(2)
    out.print(f"{s.name}: OK — {len(s.nodes)} nodes, {len(s.links)} links, {len(s.transfers)} transfers, "
              f"{len(s.demand)} demand rows, {len(s.parameters)} parameters; {count_numbers(s)} numbers, each "
              f"with a source among {len(s.sources)} ({(s.sources['kind'] == 'assumption').sum()} assumptions)")


@app.command()
@guarded
def validate(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP),
             observations: Path = typer.Option(None, "--observations", help="CSV of held-out observations: "
                                               "output,year,value,source (output: a path into run --json, "
                                               "e.g. corridors.middle.tonnes, or history.NAME for a variable of "
                                               "the political history run); default: the dataset's own "
                                               "observations.csv rows that name an output"),
             runs: int = typer.Option(200, "--runs", help="runs in the ensemble"),
             seed: int = typer.Option(0, "--seed"),
             ensemble: str = typer.Option("prior", "--from", help="prior: parameters drawn from their ranges; "
                                          "default: the default parameters over the model's random streams; "
                                          "posterior: the network's free coefficients drawn from the "
                                          "dataset's posterior (calibrate --posterior), and for history.* "
                                          "rows the political constants from the history posterior"),
             fit_until: int = typer.Option(None, "--fit-until", help="refit the network's free coefficients "
                                           "to the calibration targets up to this year first (history.* "
                                           "rows: match the history again up to it, with --from posterior); "
                                           "the observations after it are the held-out ones"),
             starts: int = typer.Option(1, "--starts", help="--fit-until: refit from N starts, as calibrate "
                                        "--starts does (the stored fit records how many it took)"),
             json_: bool = typer.Option(False, "--json")):
    """Back-test: set held-out observations against the model's ensemble (median and 5-95% band).
    ('multivector data check' validates the dataset itself.)"""
    from multivector.views.validation import backtest, dataset_observations, read_observations, summary

    s = _load(scenario)
    obs = read_observations(observations) if observations is not None else dataset_observations(s)
    stage = lambda description, unit: progress_bar(description, unit, quiet=json_)
    table = backtest(s, obs, runs=runs, seed=seed, ensemble=ensemble, fit_until=fit_until, stage=stage,
                     starts=starts)
    info = summary(table)
    if json_:
        _print_json({"summary": info, "rows": table.to_dict(orient="records")})
        return
    refit = f"; refitted to the observations up to {fit_until}" if fit_until is not None else ""
    t = Table(title=f"{s.name}: observed against {info['runs']} runs ({ensemble}{refit})", title_justify="left")
    for col in ("output", "year", "observed", "median", "5-95%", "error", "in band", "source"):
        t.add_column(col, justify="left" if col in ("output", "source") else "right")
    num = lambda x: _fmt(x, ",.0f" if abs(x) >= 1000 else ".4g")
    for r in table.itertuples():
        colour = "green" if r.in_band else "red"
        year = str(r.year) if r.held_out else f"{r.year} (in sample)"
        t.add_row(r.output, year, num(r.observed), num(r.median), f"{num(r.p5)}–{num(r.p95)}",
                  _fmt(r.rel_error, "+.1%"),
                  f"[{colour}]{'yes' if r.in_band else 'no'}[/]", r.source)
    out.print(t)
    if "refit" in info:
        out.print("refitted: " + ", ".join(f"{k} = {v:.4g}" for k, v in info["refit"].items()))
    held = f"held-out observations (after {fit_until})" if fit_until is not None else "observations"
    apart = [f"{n} {why}" for n, why in ((info["observed_zero"], "observed at zero"),
                                          (info["without_model_value"], "without a modelled value")) if n]
    close = (f"{info['within_20pct']:.0%} of {info['with_relative_error']}" if info["within_20pct"] is not None
             else "none of 0")
    out.print(f"{close} {held} within 20% of the median"
              + (f" ({', '.join(apart)}, without a relative error)" if apart else "")
              + f"; the 5-95% band covers {info['band_coverage']:.0%} of {info['observations']}"
              + (" (each band widened by the observation's stated error)" if info.get("widened") else ""))
    if "discrepancy" in info:
        out.print(f"the posterior's bands carry its model discrepancy (median δ = {info['discrepancy']:.2f} on the "
                  "log scale)")
    if "history_discrepancy" in info:
        out.print("history.* rows: the political register's history run, its constants drawn from the history "
                  + (f"match up to {fit_until}" if fit_until is not None else "posterior")
                  + f" (median δ = {info['history_discrepancy']:.2f})")


@data_app.command("observations")
@guarded
def data_observations(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP),
                      json_: bool = typer.Option(False, "--json")):
    """List a dataset's observed series (observations.csv): years, count, unit, error, output and sources."""
    from multivector.views.validation import observation_series

    s = _load(scenario)
    rows = observation_series(s)
    if json_:
        _print_json(rows)
        return
    if not rows:
        out.print(f"{s.name}: no observations.csv (see docs/data-format.md)")
        return
    t = Table(title=f"{s.name}: {len(rows)} observed series, {sum(r['n'] for r in rows)} values",
              title_justify="left")
    for col in ("series", "years", "n", "unit", "error", "output", "source"):
        t.add_column(col, justify="right" if col in ("n", "error") else "left")
    for r in rows:
        errors = r["error"] if isinstance(r["error"], list) else [r["error"]]
        fmt = (lambda e: f"±{e * 100:g}%") if r["error_kind"] == "relative" else (lambda e: f"±{e:g}")
        text = fmt(errors[0]) if len(errors) == 1 else f"{fmt(errors[0])} to {fmt(errors[-1])}"
        spans = []                 # runs of consecutive years: 2016–2017, 2019, 2021–2023
        for y in r["years"]:
            if spans and y == spans[-1][1] + 1:
                spans[-1][1] = y
            else:
                spans.append([y, y])
        years = ", ".join(f"{a}–{b}" if a != b else str(a) for a, b in spans)
        ids = r["sources"][:2] + ([f"+{len(r['sources']) - 2}"] if len(r["sources"]) > 2 else [])
        t.add_row(r["series"], years, str(r["n"]), r["unit"], text, r["output"] or "—", ", ".join(ids))
    out.print(t)


@data_app.command("copy")
@guarded
def data_copy(name: str = typer.Argument(..., help="built-in dataset"),
              target: Path = typer.Argument(..., help="folder to create")):
    """Write a built-in dataset's files to a folder, as a start for your own model."""
    from multivector.dataset import copy_dataset

    written = copy_dataset(name, target)
    out.print(f"wrote {len(written)} files to {target}; run it with: multivector run {target}")


@app.command()
@guarded
def claims(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP), seed: int = typer.Option(0),
           set_: Optional[list[str]] = typer.Option(None, "--set", help="override a parameter: NAME=VALUE"),
           sobol: Optional[str] = typer.Option(None, help="a Sobol exploration's run id: also measure the share of "
                                                          "the variance the argument's parameters carry"),
           db: Path = typer.Option(Path("multivector.duckdb"), help="DuckDB store (with --sobol)"),
           json_: bool = typer.Option(False, "--json")):
    """Set a dataset's quantified claims (claims.csv: speeches, targets) against what the data and the model
    say; with --sobol, test the argument that its named parameters decide the outcome."""
    from multivector.model.claims import evaluate_claims

    s = _load(scenario)
    rows = evaluate_claims(s, seed=seed, overrides=parse_sets(set_))
    share = None
    if sobol is not None:
        from multivector.explore.analysis import group_share
        from multivector.explore.store import Store

        if not s.focus.argument:
            raise InputError(f"scenario '{s.name}' names no parameters in [focus] argument")
        with Store(db, read_only=True) as store:
            share = group_share(store, sobol, s.focus.argument, ["consolidated", store.headline(sobol)])
    if json_:
        doc = rows if share is None else {"claims": rows, "argument": {
            "parameters": share.attrs["group"], "sampled": share.attrs["parameters"], "runs": share.attrs["runs"],
            "outcomes": share.reset_index().to_dict(orient="records")}}
        _print_json(doc)
        return
    t = Table(title=f"Claims against data and model ({s.name}, default run, seed {seed})", title_justify="left",
              show_lines=True)
    for col in ("claim", "year", "claimed", "model (or data)", "verdict", "what the data say"):
        t.add_column(col, overflow="fold")
    reads = {"about": "", "at_least": "≥ ", "at_most": "≤ "}
    for r in rows:
        colour = "green" if r["verdict"] == "consistent" else "red"
        answer = _num(r["model"], r["unit"]) if r["model"] is not None else _num(r["observed"], r["unit"]) + " (data)"
        t.add_row(f"{r['claim']} [{r['source']}]", str(r["year"]), reads[r["test"]] + _num(r["claimed"], r["unit"]),
                  answer, f"[{colour}]{r['verdict']}[/]", r["data_says"])
    out.print(t)
    if share is not None:
        t = Table(title=f"Do {len(share.attrs['group'])} named parameters decide the outcome? Share of the variance "
                        f"(Sobol, {share.attrs['runs']:,} runs over {share.attrs['parameters']} parameters)",
                  title_justify="left")
        for col in ("outcome", "named: first order", "named: total", "all: first order", "all: total", "largest"):
            t.add_column(col, justify="left" if col in ("outcome", "largest") else "right")
        for outcome, r in share.iterrows():
            t.add_row(outcome, f"{r.group_S1:.0%}", f"{r.group_ST:.0%}", f"{r.all_S1:.0%}", f"{r.all_ST:.0%}", r.top)
        out.print(t)
        out.print("named: " + ", ".join(share.attrs["group"]))


def _num(x, unit):
    if x is None:
        return "–"
    return f"{x:.0%}" if unit == "share" else f"{x:,.0f} {unit}" if abs(x) >= 100 else f"{x:,.2f} {unit}"


@export_app.command("xmile")
@guarded
def export_xmile_cmd(target: Path = typer.Argument(..., help="XMILE file to write"),
                     scenario: str = typer.Option(DEFAULT, help=SCENARIO_HELP),
                     seed: int = typer.Option(0, help="seed of the run whose network contributions are exported"),
                     set_: Optional[list[str]] = typer.Option(None, "--set", help="override a parameter: NAME=VALUE")):
    """Write the political register as XMILE (Stella, Vensim, PySD), with the network's contributions
    from one coupled run as exogenous series."""
    from multivector.model.xmile import export_xmile

    s = _load(scenario)
    export_xmile(s, target, seed=seed, overrides=parse_sets(set_))
    out.print(f"wrote {target} (political register of {s.name}, seed {seed}; Euler, dt = "
              f"{s.politics.sd.spec.sim.dt:g} year)")


# ------------------------------------------------------------------------------------------------
# exploration

DB_HELP = "DuckDB store (default multivector.duckdb in the working directory)"


def _geojson_target(path: Path) -> Path:
    """Refuse an output path that cannot take the file before anything is simulated."""
    if path.suffix.lower() not in (".geojson", ".json"):
        raise InputError(f"{path}: a GeoJSON file ends in .geojson or .json", hint="e.g. flows.geojson")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist", hint="create it, or choose another output path")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file", hint="give a file name, e.g. flows.geojson")
    if not os.access(folder, os.W_OK):
        raise InputError(f"folder {folder} is not writable", hint="choose another output path")
    return path


@export_app.command("geojson")
@guarded
def export_geojson(args: list[str] = typer.Argument(..., metavar="[RUN_ID] OUT",
                                                    help="an exploration's run id and the file to write, "
                                                         "or only the file with --scenario"),
                   scenario: Optional[str] = typer.Option(None, help="simulate one run of this scenario "
                                                                     "instead (" + SCENARIO_HELP + ")"),
                   years: Optional[str] = typer.Option(None, help="with --scenario: YEAR or FIRST:LAST "
                                                                  "(default as for run)"),
                   set_: Optional[list[str]] = typer.Option(None, "--set", help="with --scenario: NAME=VALUE"),
                   seed: int = typer.Option(0, help="with --scenario: seed of the random disruption stream"),
                   run_: Optional[int] = typer.Option(None, "--run", help="with RUN_ID: which run of the exploration "
                                                                         "(default: the one with the median final index)"),
                   db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP)):
    """Write the freight network with one run's flows per year as GeoJSON (QGIS, kepler.gl): links as
    lines, places and gateways as points; an existing file is replaced.

    With RUN_ID, that exploration's run is simulated again from its stored parameters and seed (the
    store keeps corridor totals, not link flows) and must reproduce its stored outcomes."""
    from multivector.io import atomic_write
    from multivector.views.geojson import network_geojson

    usage = f"multivector export geojson RUN_ID OUT  or  multivector export geojson --scenario {DEFAULT} OUT"
    if len(args) != (1 if scenario is not None else 2):
        raise InputError("give RUN_ID and OUT, or --scenario and OUT", hint=usage)
    target = _geojson_target(Path(args[-1]))
    if scenario is not None:
        from multivector.model import simulate

        if run_ is not None:
            raise InputError("--run picks a run of an exploration; with --scenario use --seed", hint=usage)
        s = _load(scenario)
        overrides = parse_sets(set_)
        s.check_names(overrides)
        yrs = parse_years(years) if years else (None if s.politics is not None else [s.base_year])
        with progress_bar(f"simulating {s.name}", "years") as bar:
            ds = simulate(s, overrides=overrides, years=yrs, seed=seed, keep_routes=True,
                          coupled=None if s.politics is not None else False, progress=bar)
        doc = network_geojson(s, ds, about={"overrides": overrides})
        what = f"{s.name}, seed {seed}"
    else:
        from multivector.explore.ensemble import replay
        from multivector.explore.store import Store

        if years or set_ or seed:
            raise InputError("--years, --set and --seed go with --scenario; a stored run keeps its own", hint=usage)
        with Store(db, read_only=True) as store:
            s, ds, index, policy = replay(store, args[0], run_)
        doc = network_geojson(s, ds, about={"exploration": args[0], **({"policy": policy} if policy else {})})
        what = f"run {index} of {args[0]}" + (f", policy {policy}" if policy else "")
    atomic_write(target, json.dumps(doc, allow_nan=False, ensure_ascii=False))
    links = sum(f["properties"]["element"] == "link" for f in doc["features"])
    yrs = doc["multivector"]["years"]
    out.print(f"wrote {target} ({links} links, {len(doc['features']) - links} places, "
              f"{yrs[0]}–{yrs[-1]}; {what})", highlight=False)


@app.command()
@guarded
def explore(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP),
            n: int = typer.Option(1000, "--n", help="runs (LHS), base samples (Sobol) or trajectories (Morris)"),
            sampler: str = typer.Option("lhs", help="lhs, sobol or morris"),
            levers: Optional[str] = typer.Option(None, help="'all' to sample the levers too, or a CSV of policies"),
            seed: int = typer.Option(0),
            run_id: Optional[str] = typer.Option(None, "--run-id", help="name of the run (generated if not given)"),
            db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP),
            scheduler: Optional[str] = typer.Option(None, help="local (Dask LocalCluster), processes, or tcp://host:port"),
            chunk_size: int = typer.Option(250, "--chunk-size", help="runs per chunk (one transaction each)"),
            resume: Optional[str] = typer.Option(None, help="continue an interrupted run"),
            params_: Optional[str] = typer.Option(None, "--params",
                                                  help="comma-separated parameters to sample (default: all uncertain ones)"),
            ensemble: Optional[str] = typer.Option(None, "--from", help="posterior (the default where the dataset "
                                                   "stores one): each run draws the calibrated coefficients and the "
                                                   "history-matched constants from the dataset's posteriors; prior: "
                                                   "the fit's values and the stated ranges"),
            json_: bool = typer.Option(False, "--json")):
    """Run an ensemble of coupled simulations into the store, chunk by chunk (resumable)."""
    from multivector.explore.ensemble import explore as run_explore

    if ensemble not in (None, "prior", "posterior"):
        raise InputError(f"--from {ensemble}: unknown ensemble", hint="prior or posterior")
    started = {}
    with progress_bar("exploring", "runs", quiet=json_, resumable=True,
                      line="{done}/{total} runs written ({rate} runs/s)") as bar:

        def on_start(rid, total):
            started.update(run_id=rid, total=total)
            err.print(f"run id: {rid}  ({total:,} runs)", highlight=False)
            bar.describe(rid, total=total)

        names = [x.strip() for x in params_.split(",") if x.strip()] if params_ else None
        rid = run_explore(scenario, n, sampler=sampler, levers=levers, seed=seed, run_id=run_id, db=db,
                          scheduler=scheduler, chunk_size=chunk_size, resume=resume, progress=bar,
                          on_start=on_start, names=names, posterior=None if ensemble is None else ensemble == "posterior")
    from multivector.explore.store import Store

    with Store(db, read_only=True) as store:
        unsettled = store.unconverged_runs(rid)
    if json_:
        _print_json({"run_id": rid, "runs": started.get("total"), "db": str(db), "unconverged": unsettled})
    else:
        out.print(f"finished {rid}: {started.get('total', 0):,} runs in {db}")
        if unsettled:
            out.print(f"[yellow]{unsettled:,} runs ({unsettled / max(started.get('total', 1), 1):.1%}) did not converge "
                      "in some year[/]: the route choice missed its gap there, or (most often) a capacity price was "
                      "left unsettled, the route choice exact under it; flagged 'converged' = false in the run "
                      "outcomes (export them to see which)")


@app.command()
@guarded
def runs(db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP), json_: bool = typer.Option(False, "--json")):
    """List the explorations in the store and their status."""
    from multivector.explore.store import Store

    with Store(db, read_only=True) as store:
        table = store.list_runs()
    if json_:
        print(table.to_json(orient="records", date_format="iso"))
        return
    t = Table(title=f"Runs in {db}", title_justify="left")
    for col in ("run id", "scenario", "sampler", "runs", "done", "status", "seconds", "created"):
        t.add_column(col)
    for r in table.itertuples():
        t.add_row(r.run_id, r.scenario, r.sampler, f"{r.n:,}", f"{int(r.done):,}", r.status,
                  "–" if r.seconds is None or r.seconds != r.seconds else f"{r.seconds:,.1f}", str(r.created)[:19])
    out.print(t)


def _export_tables(run_id: str, target: Path, db: Path, fmt: str):
    from multivector.explore.store import Store

    with Store(db, read_only=True) as store:
        written = store.export(run_id, target, fmt)
    for p in written:
        out.print(f"wrote {p}")


@export_app.command("parquet")
@guarded
def export_parquet(run_id: str, target: Path, db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP)):
    """Write a run's experiments and outcomes as Parquet files."""
    _export_tables(run_id, target, db, "parquet")


@export_app.command("csv")
@guarded
def export_csv(run_id: str, target: Path, db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP)):
    """Write a run's experiments and outcomes as CSV files."""
    _export_tables(run_id, target, db, "csv")


@app.command()
@guarded
def sensitivity(run_id: str, outcome: str = typer.Option(..., help="an outcome of the run, e.g. its index or consolidated"),
                year: Optional[int] = typer.Option(None, help="year of a yearly outcome (default: the last)"),
                db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP),
                top: int = typer.Option(15), json_: bool = typer.Option(False, "--json")):
    """Sobol indices (Saltelli design), Morris screening (Morris design) or RBD-FAST first-order indices (LHS)."""
    from multivector.explore.analysis import sensitivity as analyse
    from multivector.explore.store import Store

    with Store(db, read_only=True) as store:
        frame = analyse(store, run_id, outcome, year)
    if json_:
        _print_json({"outcome": outcome, "year": frame.attrs["year"], "method": frame.attrs["method"],
                     "indices": frame.reset_index().to_dict(orient="records")})
        return
    yr = f", {frame.attrs['year']}" if frame.attrs["year"] else ""
    t = Table(title=f"Sensitivity of {outcome}{yr} ({frame.attrs['method']}, run {run_id})", title_justify="left")
    t.add_column("parameter")
    for col in frame.columns:
        t.add_column(col, justify="right")
    for name, row in frame.head(top).iterrows():
        t.add_row(name, *[f"{v:.3f}" for v in row])
    out.print(t)


@app.command()
@guarded
def discover(run_id: str, outcome: str = typer.Option("consolidated"),
             threshold: Optional[float] = typer.Option(None, help="turn a numeric outcome into yes/no (>= threshold)"),
             below: bool = typer.Option(False, help="cases of interest are at or below the threshold"),
             year: Optional[int] = typer.Option(None), density: float = typer.Option(0.8, help="density wanted of the chosen box"),
             peel_alpha: float = typer.Option(0.05), mass_min: float = typer.Option(0.05),
             db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP), json_: bool = typer.Option(False, "--json")):
    """Scenario discovery with PRIM: the region of parameters where the outcome occurs."""
    from multivector.explore.analysis import discover as run_prim
    from multivector.explore.store import Store

    with Store(db, read_only=True) as store:
        meta = store.get_run(run_id)
        units = {}
        try:
            s = _load(meta["scenario"])
            units = {k: p.unit for k, p in s.parameters.items()}
        except InputError:
            pass
        res = run_prim(store, run_id, outcome, year, threshold, below, peel_alpha, mass_min, density, units)
    box = res.box
    if json_:
        _print_json({"stats": res.stats, "trajectory": res.trajectory.reset_index().to_dict(orient="records"),
                     "box": box.reset_index(names="parameter").to_dict(orient="records")})
        return
    t = Table(title=f"PRIM peeling trajectory ({outcome}, run {run_id})", title_justify="left")
    for col in ("step", "coverage", "density", "mass", "restricted"):
        t.add_column(col, justify="right")
    for i, r in res.trajectory.iterrows():
        mark = " ◀" if i == res.chosen else ""
        t.add_row(f"{i}{mark}", f"{r.coverage:.3f}", f"{r.density:.3f}", f"{r.mass:.3f}", str(int(r.n_restricted)))
    out.print(t)
    st = res.stats
    b = Table(title=f"Chosen box (step {st['step']}): coverage {st['coverage']:.2f}, density {st['density']:.2f}, "
                    f"mass {st['mass']:.2f}", title_justify="left")
    for col in ("parameter", "min", "max", "full range", "unit"):
        b.add_column(col)
    for name, r in box.iterrows():
        b.add_row(name, f"{r['min']:.4g}", f"{r['max']:.4g}", f"{r['range_min']:.4g}–{r['range_max']:.4g}", r["unit"])
    out.print(b)


@app.command()
@guarded
def strategies(scenario: str = typer.Argument(DEFAULT, help=SCENARIO_HELP),
               levers: Path = typer.Option(..., help="CSV of policies: one column per lever, one row per policy"),
               n: int = typer.Option(200, "--n", help="futures (uncertainty samples) shared by every policy"),
               seed: int = typer.Option(0),
               outcome: Optional[str] = typer.Option(None, help="run-level outcome to compare (default: the final index)"),
               db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP),
               run_id: Optional[str] = typer.Option(None, "--run-id"),
               scheduler: Optional[str] = typer.Option(None), chunk_size: int = typer.Option(250, "--chunk-size"),
               json_: bool = typer.Option(False, "--json")):
    """Evaluate policies (lever combinations) on one shared ensemble: probability of consolidation,
    expected and worst outcome, regret, Pareto set."""
    from multivector.explore.ensemble import strategies as evaluate

    with progress_bar("evaluating policies", "runs", quiet=json_, resumable=True) as bar:

        def on_start(rid, total):
            err.print(f"run id: {rid}  ({total:,} runs)", highlight=False)
            bar.describe(rid, total=total)

        rid, table = evaluate(scenario, str(levers), n, outcome=outcome, seed=seed, run_id=run_id, db=db,
                              scheduler=scheduler, chunk_size=chunk_size, on_start=on_start, progress=bar)
    outcome = table.attrs["outcome"]
    if json_:
        _print_json({"run_id": rid, "outcome": outcome,
                     "policies": table.reset_index().to_dict(orient="records")})
        return
    t = Table(title=f"Policies over {n} shared futures ({outcome}; run {rid})", title_justify="left")
    robust = "p_over_definitions" in table
    columns = ["policy", "P(consolidated)", *(["over its definition"] if robust else []), "expected", "worst",
               "5th pct", "max regret", "mean regret", "Pareto"]
    for col in columns:
        t.add_column(col, justify="left" if col == "policy" else "right")
    for name, r in table.iterrows():
        t.add_row(name, f"{r.p_consolidated:.0%}", *([f"{r.p_over_definitions:.0%}"] if robust else []),
                  f"{r.expected:.3f}", f"{r.worst:.3f}", f"{r.p05:.3f}",
                  f"{r.max_regret:.3f}", f"{r.mean_regret:.3f}", "yes" if r.pareto else "")
    out.print(t)


@app.command()
@guarded
def report(run_id: Optional[str] = typer.Argument(None, help="an exploration's run id in the store"),
           out_file: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write"),
           png: Optional[Path] = typer.Option(None, "--png", help="also write the main figures as PNG here"),
           scenario: Optional[str] = typer.Option(None, help="report one run of this scenario instead"),
           set_: Optional[list[str]] = typer.Option(None, "--set", help="with --scenario: NAME=VALUE"),
           seed: int = typer.Option(0, help="with --scenario: seed of the random disruption stream"),
           db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP)):
    """One self-contained HTML report (works offline) of an exploration, or of one run with --scenario."""
    from multivector.explore.store import Store
    from multivector.io import atomic_write
    from multivector.views.report import collect_exploration, collect_run, render, write_pngs

    if (run_id is None) == (scenario is None):
        raise InputError("give a run id or --scenario, not both or neither",
                         hint=f"multivector report RUN_ID  or  multivector report --scenario {DEFAULT}")
    if out_file.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out {out_file}: the report is HTML", hint="e.g. --out report.html")
    if run_id is not None:
        with Store(db, read_only=True) as store, progress_bar(f"report of {run_id}", "steps") as bar:
            data = collect_exploration(store, run_id, progress=bar)
    else:
        s = _load(scenario)
        overrides = parse_sets(set_)
        s.check_names(overrides)
        data = collect_run(s, seed=seed, overrides=overrides)
    atomic_write(out_file, render(data))
    out.print(f"wrote {out_file}")
    if png is not None:
        for p in write_pngs(data, png):
            out.print(f"wrote {p}")


@app.command()
@guarded
def serve(host: str = typer.Option("127.0.0.1", help="address to listen on; any but a loopback address "
                                                      "(127.0.0.1, ::1, localhost) needs --token"),
          port: int = typer.Option(8000, min=1, max=65535),
          db: Path = typer.Option(Path("multivector.duckdb"), help=DB_HELP),
          max_n: int = typer.Option(20_000, help="the largest exploration one request may start"),
          max_jobs: int = typer.Option(2, help="explorations running at once; more get 429"),
          workers: Optional[int] = typer.Option(None, min=1, help="worker processes for single runs "
                                                                  "(default: one per available core)"),
          max_queued_runs: int = typer.Option(32, min=0, help="single runs waiting for a worker; more get 429"),
          token: Optional[str] = typer.Option(None, envvar="MULTIVECTOR_TOKEN", show_default=False,
                                              help="starting runs and explorations needs 'Authorization: Bearer "
                                                   "TOKEN' (at least 16 characters); reading stays open"),
          dataset: Optional[list[Path]] = typer.Option(None, "--dataset",
                                                      help="also serve this dataset folder, by its name")):
    """The HTTP API (OpenAPI at /docs) and the dashboard (/) on one server."""
    from multivector.interfaces.server.auth import check_exposure
    from multivector.io import require

    token = check_exposure(host, token)          # before anything is loaded or bound
    uvicorn = require("uvicorn", "serve", "multivector serve")
    from multivector.interfaces.server import create_app

    app_ = create_app(db=db, max_n=max_n, max_jobs=max_jobs, max_queued_runs=max_queued_runs,
                      datasets=dataset or (), workers=workers, token=token)
    pool = app_.state.server.runs
    shown = f"[{host}]" if ":" in host else host
    out.print(f"multivector dashboard on http://{shown}:{port}/  (API docs: /docs; store {db}; "
              f"{pool.workers} worker(s) for runs; "
              + ("runs and explorations need the token)" if token else "no token: anyone who reaches it may run)"))
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def main():  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
