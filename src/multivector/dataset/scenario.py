"""Scenarios: a dataset folder read, validated and held as tables.

A :class:`Scenario` is the first stage of the one data path
(scenario → compiled arrays → ``simulate`` → labelled results). It owns the raw tables of a dataset
(see ``docs/data-format.md``) and the parameter table; it does no modelling. :func:`load` reads and
validates a folder; every problem is an :class:`~multivector.errors.InputError` naming the file, row
and column.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from multivector.dataset.checks import Checks, load_checks
from multivector.dataset.politics import PoliticalModel, load_politics
from multivector.errors import InputError
from multivector.io import read_toml

LAYERS = ("rail_1435", "rail_1520", "water", "sea", "lake_ferry", "pipeline", "tanker", "road")
MODES = ("rail", "ferry", "sea", "lake_ferry", "pipeline", "tanker", "road")
NODE_KINDS = ("origin", "destination", "border", "gauge_change", "port", "junction", "oilfield",
              "terminal", "waypoint")
#: Node kinds whose places report the freight they handle (gateways); ``[model] gateway_kinds``
#: overrides the list for a dataset.
GATEWAY_KINDS = ("border", "gauge_change", "port", "terminal")
#: The compass directions a gateway's freight is reported by (see :func:`multivector.freight.network.crossing_direction`).
DIRECTIONS = ("westbound", "eastbound", "northbound", "southbound")
#: Modes whose delay grows as a queue (ferries and lake ferries); other capacitated links use BPR.
QUEUE_MODES = ("ferry", "lake_ferry", "tanker")


def transfer_layers(between: str) -> tuple[list[str], bool]:
    """The layers a transfer's ``between`` joins, and whether it works both ways.

    ``a|b`` is one facility used both ways, with one capacity; ``a>b`` works from ``a`` to ``b`` only,
    with a capacity of its own: a border crossing whose limit is agreed per direction has two such rows.
    """
    one_way = ">" in between
    return between.split(">" if one_way else "|"), not one_way


def risk_parameter(risk_class: str, commodity: str, names) -> str:
    """The parameter holding a risk class's premium for a commodity: ``risk_<class>_<commodity>`` where
    one is declared (a premium quoted per TEU does not carry over to a TEU-equivalent of bulk), else
    ``risk_<class>``."""
    own = f"risk_{risk_class}_{commodity}"
    return own if own in names else f"risk_{risk_class}"


#: The parameter that scales a commodity's demand in every year, where a dataset declares one.
DEMAND_FACTOR = "demand_factor_"


def is_rail_transfer(between: str) -> bool:
    """A transfer between two rail layers (``rail_1520|rail_1435``): a gauge change or rail border
    crossing, which queues on its own scale (``queue_scale_rail_h``) rather than a port's."""
    return all(layer.startswith("rail") for layer in transfer_layers(between)[0])


def capacity_groups_of(field) -> list[str]:
    """The capacity groups a links.csv or transfers.csv row names in ``capacity_group``: ';'-separated,
    since one facility can sit in several (a Caspian feeder in the fleet's group and in its own ramp's);
    its capacity is scaled by every group's factor."""
    return [g.strip() for g in str(field or "").split(";") if g.strip()]


def in_capacity_groups(fields, groups) -> np.ndarray:
    """Which of these ``capacity_group`` fields name any of ``groups`` (a boolean mask)."""
    wanted = set(groups)
    return np.array([bool(wanted.intersection(capacity_groups_of(f))) for f in fields], dtype=bool)


def link_layer(mode: str, gauge) -> str:
    """The layer a link of ``mode`` (and rail ``gauge``) runs in: rail_1435, rail_1520, water, ..."""
    if mode == "rail":
        return f"rail_{int(gauge)}"
    return {"ferry": "water"}.get(mode, mode)

TABLES = {
    "sources.csv": ["id", "kind", "title", "url", "year", "low", "high", "note"],
    "nodes.csv": ["id", "name", "country", "kind", "lat", "lon", "source"],
    "links.csv": ["id", "from", "to", "mode", "gauge_mm", "length_km", "capacity_mt", "extra_time_h",
                  "extra_cost_usd", "risk_class", "commodities", "sources"],
    "transfers.csv": ["node", "between", "capacity_mt", "time_h", "cost_usd", "risk_class", "sources"],
    "demand.csv": ["origin", "destination", "commodity", "year", "volume", "source"],
    "timeline.csv": ["year", "parameter", "value", "source"],
    "targets.csv": ["id", "year", "metric", "observed", "unit", "source", "note"],
}
#: Tables a dataset may leave out. ``observations.csv`` holds observed series (history, not forward-model
#: input): the back-test reads the rows that name an ``output``; the political register's history match
#: ([history] in politics.toml) reads the series it names.
OPTIONAL_TABLES = {
    "observations.csv": ["series", "output", "year", "value", "error", "unit", "source", "note"],
}
#: The last year whose observations a dataset may hold: later values are held out for testing.
LAST_OBSERVED_YEAR = 2024
#: A unit ending in this says the series' ``error`` is absolute (in the unit), not relative.
ABSOLUTE_ERROR = "absolute error"
#: targets.csv's ``bound`` for an observation that is a ceiling ("test trains at most"), not a count.
UPPER_BOUND = "upper"
#: Numeric columns of each table, and whether a value is required.
NUMERIC = {
    "nodes.csv": {"lat": True, "lon": True},
    "links.csv": {"gauge_mm": False, "length_km": True, "capacity_mt": False, "extra_time_h": False,
                  "extra_cost_usd": False, "opens": False, "oneway": False},
    "transfers.csv": {"capacity_mt": False, "time_h": True, "cost_usd": True},
    "demand.csv": {"year": True, "volume": True},
    "timeline.csv": {"year": True, "value": True},
    "targets.csv": {"year": True, "observed": True, "error": False},
    "observations.csv": {"year": True, "value": True, "error": True},
}
#: Numeric columns that must not be negative (and capacity must be > 0 where given).
NON_NEGATIVE = {"length_km", "capacity_mt", "extra_time_h", "time_h", "volume", "observed", "error"}


class Parameter(BaseModel):
    """One uncertain quantity or lever: its default, plausible range, unit and source."""

    model_config = ConfigDict(extra="forbid")
    name: str
    value: float
    min: float
    max: float
    unit: str
    source: str
    description: str = ""
    kind: str = "parameter"      # "parameter" (uncertain) or "lever" (a policy choice)

    @model_validator(mode="after")
    def _in_range(self):
        if self.kind not in ("parameter", "lever"):
            raise ValueError(f"kind must be 'parameter' or 'lever', not '{self.kind}'")
        if not (math.isfinite(self.value) and math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("value, min and max must be finite numbers")
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if not self.min <= self.value <= self.max:
            raise ValueError(f"value {self.value} lies outside its range [{self.min}, {self.max}]")
        return self


#: A commodity's numbers, each of which its ``sources`` must cover (``field=ID`` or ``*=ID``).
COMMODITY_NUMBERS = ["tonnes_per_unit", "cost_units_per_unit", "route_detour_max"]


class Commodity(BaseModel):
    """A class of freight assigned on its own: its units and how it loads capacity."""

    model_config = ConfigDict(extra="forbid")
    name: str
    label: str = ""
    unit: str
    tonnes_per_unit: float
    cost_unit: str
    cost_units_per_unit: float
    sources: str
    #: the commodity's own bound on its routes' length against each OD's shortest (``[model]
    #: route_detour_max`` otherwise): where the logit would spread some of it onto ways its shippers do not use
    route_detour_max: float | None = None

    @model_validator(mode="after")
    def _positive(self):
        if self.tonnes_per_unit <= 0 or self.cost_units_per_unit <= 0:
            raise ValueError("tonnes_per_unit and cost_units_per_unit must be > 0")
        if self.route_detour_max is not None and not self.route_detour_max > 1:
            raise ValueError(f"route_detour_max must be a number above 1, not {self.route_detour_max!r} "
                             "(e.g. 1.5: no route longer than 1.5 times the shortest)")
        return self

    def detour_bound(self, default: float | None) -> float | None:
        """The bound on this commodity's routes: its own, else the dataset's ``default``."""
        return self.route_detour_max if self.route_detour_max is not None else default


class Corridor(BaseModel):
    """A named corridor: a path belongs to the first corridor (in file order) whose nodes it passes."""

    model_config = ConfigDict(extra="forbid")
    name: str
    label: str = ""
    via_nodes: list[str]
    variants: list[str] = []      # extra gateway nodes, each of which gets its own cheapest route
    # the commodities whose routes it claims (empty: every commodity); a route of another commodity
    # through its nodes is no traffic of the corridor (China's boxes for Moscow pass Moscow, yet are no
    # Asia-Europe freight)
    commodities: list[str] = []
    colour: str = ""              # how maps and charts draw it (#rrggbb); a palette colour when empty

    @model_validator(mode="after")
    def _colour(self):
        if self.colour and not re.fullmatch(r"#[0-9a-fA-F]{6}", self.colour):
            raise ValueError(f"colour must be #rrggbb, not '{self.colour}'")
        return self


class Segment(BaseModel):
    """Shippers of one commodity who shun routes crossing any of the ``avoids`` risk classes (a
    forwarder that stopped booking through a country), as a share ``segment_share_<name>`` of each OD's
    demand. Without a ``premium`` they leave those routes; with one (a parameter's name, in the
    commodity's cost unit) they pay it on top of such a route's cost, once per route, and come back to it
    when the routes they prefer cost more than that (an exporter who avoids a country while the
    alternative is dearer by less than the premium, but not at any price). On an OD whose routes all
    avoid those classes, or all cross them, they choose as everyone else does."""

    model_config = ConfigDict(extra="forbid")
    name: str
    label: str = ""
    commodity: str
    avoids: list[str]
    premium: str | None = None
    source: str

    @property
    def share_parameter(self) -> str:
        return f"segment_share_{self.name}"


class Column(BaseModel):
    """A column of the table ``multivector run`` prints: a path into the run document."""

    model_config = ConfigDict(extra="forbid")
    label: str
    value: str                    # e.g. corridors.NAME.teu, focus_overland_share, or the headline index
    format: str = ",.0f"          # a Python format spec
    scale: float = 1.0            # multiply before formatting (e.g. 1e-6 for tonnes -> Mt)


class Focus(BaseModel):
    """What a dataset is about, so that the engine and the interfaces need not know it.

    ``country`` is the code in nodes.csv's country column (a border node lists both sides, e.g. ``AA/BB``);
    the engine reports that country's share of overland freight and its transit revenue, and applies
    ``focus_tariff_factor`` to its line-haul tariffs. ``headline_label`` names the political register's
    headline index (``[outcomes] index``) in text; ``featured_parameters`` are shown
    first on the dashboard; ``table`` is what ``multivector run`` prints per year.
    """

    model_config = ConfigDict(extra="forbid")
    country: str
    name: str
    headline_label: str = ""      # how views name the headline index ([outcomes] index in politics.toml)
    featured_parameters: list[str] = []
    argument: list[str] = []      # the parameters the dataset's argument says decide the outcome
    table: list[Column] = []


@dataclass(eq=False)
class Scenario:
    """A validated dataset: tables, parameters, commodities, corridors and its focus.

    Build one with :func:`load`; the constructor only stores what it is given. Compiled forms
    (network, route sets, equations) belong to :class:`multivector.model.Model`, not here.
    """

    name: str
    path: Path | None
    model: dict
    parameters: dict[str, Parameter]
    commodities: dict[str, Commodity]
    corridors: dict[str, Corridor]
    tables: dict[str, pd.DataFrame]
    focus: Focus
    segments: dict[str, Segment] = field(default_factory=dict)   # [segments.NAME] in model.toml
    calibration: dict = field(default_factory=dict)
    politics: PoliticalModel | None = None    # the political register, if the dataset has one
    checks: Checks | None = None              # declared reality checks (checks.toml), if any
    #: observed series (observations.csv; empty when the dataset has none); not part of the fingerprint,
    #: since nothing the model computes depends on it
    observations: pd.DataFrame = field(default_factory=lambda: _empty("observations.csv"))
    #: the free coefficients' posterior samples (posterior.csv) and how they were made (posterior.toml),
    #: if the dataset stores them (``multivector calibrate --posterior --write``)
    posterior_samples: pd.DataFrame | None = None
    posterior_provenance: dict = field(default_factory=dict)
    #: the political register's free constants given its history (history_posterior.csv / .toml), if
    #: stored (``multivector calibrate --politics --write``)
    history_posterior_samples: pd.DataFrame | None = None
    history_posterior_provenance: dict = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def nodes(self) -> pd.DataFrame:
        return self.tables["nodes.csv"]

    @property
    def links(self) -> pd.DataFrame:
        return self.tables["links.csv"]

    @property
    def transfers(self) -> pd.DataFrame:
        return self.tables["transfers.csv"]

    @property
    def demand(self) -> pd.DataFrame:
        return self.tables["demand.csv"]

    @property
    def timeline(self) -> pd.DataFrame:
        return self.tables["timeline.csv"]

    @property
    def targets(self) -> pd.DataFrame:
        return self.tables["targets.csv"]

    @property
    def sources(self) -> pd.DataFrame:
        return self.tables["sources.csv"]

    @property
    def base_year(self) -> int:
        return int(self.model.get("base_year", 2024))      # checked to be an integer at load

    @property
    def overland_corridors(self) -> list[str]:
        return list(self.model.get("overland_corridors", []))

    @property
    def route_detour_max(self) -> float | None:
        """No route offered to an OD is longer than this multiple of the shortest route offered to it
        (``None``: no bound). Keeps the route set plausible where a commodity barely tells routes apart."""
        value = self.model.get("route_detour_max")
        return None if value is None else float(value)

    @property
    def capacities(self) -> str:
        """``hard``: no facility ships more than its capacity (a full ferry, port, border or line is
        priced; what the highest price cannot clear is deferred); ``soft``: freight queues past
        capacity. Pipelines and tanker berths ration either way."""
        return str(self.model.get("capacities", "soft"))

    @property
    def gateway_kinds(self) -> list[str]:
        """Node kinds whose places report the freight they handle by direction and commodity:
        ``[model] gateway_kinds``, else border, gauge_change, port and terminal."""
        return list(self.model.get("gateway_kinds", GATEWAY_KINDS))

    @property
    def gateways(self) -> list[str]:
        """The ids of the gateway nodes, in nodes.csv order."""
        kinds = set(self.gateway_kinds)
        return [n for n, k in zip(self.nodes["id"], self.nodes["kind"]) if k in kinds]

    @property
    def risk_classes(self) -> list[str]:
        """The risk classes links.csv and transfers.csv name (each priced by ``risk_<class>``)."""
        return sorted((set(self.links["risk_class"]) | set(self.transfers["risk_class"])) - {""})

    @property
    def capacity_groups(self) -> list[str]:
        """The capacity groups links.csv and transfers.csv name (each scaled by ``capacity_factor_<group>``)."""
        groups = set()
        for table in (self.links, self.transfers):
            if "capacity_group" in table.columns:
                for cell in table["capacity_group"]:
                    groups |= set(capacity_groups_of(cell))
        return sorted(groups)

    @property
    def tariff_groups(self) -> list[str]:
        """The tariff groups links.csv names (each link's tariff scaled by ``tariff_factor_<group>``)."""
        return sorted(set(filter(None, self.links["tariff_group"]))) if "tariff_group" in self.links.columns else []

    @property
    def index_label(self) -> str:
        """How text names the headline index: ``[focus] headline_label``, else the index's name."""
        index = self.politics.index if self.politics is not None else "index"
        return self.focus.headline_label or index.replace("_", " ")

    def defaults(self) -> dict[str, float]:
        """Parameter values: the file's defaults, with calibrated values where a fit is stored."""
        values = {name: p.value for name, p in self.parameters.items()}
        values.update({k: v for k, v in self.calibration.get("values", {}).items() if k in values})
        return values

    def check_names(self, names, what="parameter") -> None:
        """Raise an InputError for a name that is not a parameter, listing close matches."""
        for name in names:
            if name not in self.parameters:
                close = difflib.get_close_matches(name, list(self.parameters), n=5, cutoff=0.5)
                hint = ("did you mean " + ", ".join(close) + "?") if close else \
                    "run 'multivector params' to list them"
                raise InputError(f"unknown {what} '{name}'", hint=hint)

    def fingerprint(self) -> str:
        """A short hash of everything that defines the scenario's results (computed once)."""
        if self._fingerprint is not None:
            return self._fingerprint
        h = hashlib.sha256()
        for name in sorted(self.tables):
            h.update(name.encode())
            h.update(pd.util.hash_pandas_object(self.tables[name], index=False).values.tobytes())
        h.update(repr(sorted(self.defaults().items())).encode())
        h.update(repr([seg.model_dump() for seg in self.segments.values()]).encode())
        for samples in (self.posterior_samples, self.history_posterior_samples):   # explore --from posterior
            if samples is not None:
                h.update(pd.util.hash_pandas_object(samples, index=False).values.tobytes())
        self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint


# ------------------------------------------------------------------------------------------------
# reading

def builtin_datasets() -> list[str]:
    root = resources.files("multivector") / "datasets"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "model.toml").is_file())


def default_dataset() -> str:
    """The built-in dataset commands use when none is named (the first, alphabetically)."""
    names = builtin_datasets()
    if not names:
        raise InputError("this installation has no built-in dataset", hint="name a dataset folder")
    return names[0]


def is_builtin(scenario: "Scenario") -> bool:
    """Whether a scenario was loaded from the package's own datasets (which are not for editing)."""
    root = Path(str(resources.files("multivector") / "datasets")).resolve()
    return scenario.path is not None and Path(scenario.path).resolve().parent == root


def copy_dataset(name: str, target: str | Path) -> list[Path]:
    """Write a built-in dataset's files into a new (or empty) folder, as a start for one's own model."""
    from multivector.io import atomic_folder

    if name not in builtin_datasets():
        raise InputError(f"no built-in dataset '{name}'", hint="built-in: " + ", ".join(builtin_datasets()))
    src = dataset_path(name)

    def fill(tmp: Path):
        for f in sorted(src.iterdir()):
            if f.is_file() and f.suffix in (".csv", ".toml", ".md"):
                (tmp / f.name).write_bytes(f.read_bytes())

    return atomic_folder(target, fill, new=True)


def count_numbers(s: "Scenario") -> int:
    """How many numbers a dataset holds (three per parameter, and every numeric table cell)."""
    n = len(s.parameters) * 3
    for df in s.tables.values():
        for col in df.columns:
            if pd.api.types.is_float_dtype(df[col]):
                n += int(df[col].notna().sum())
    return n


def dataset_path(name_or_dir: str | Path) -> Path:
    """Resolve a built-in dataset name or a folder to a folder holding model.toml."""
    candidate = Path(name_or_dir)
    if candidate.is_dir():
        if not (candidate / "model.toml").is_file():
            raise InputError("folder has no model.toml", file=candidate,
                             hint="a dataset folder holds model.toml and the CSV tables; "
                                  "'multivector data copy NAME DIR' copies a built-in one")
        return candidate
    if str(name_or_dir) in builtin_datasets():
        return Path(str(resources.files("multivector") / "datasets" / str(name_or_dir)))
    raise InputError(f"no dataset or folder named '{name_or_dir}'",
                     hint="built-in datasets: " + ", ".join(builtin_datasets()))


def _empty(kind: str) -> pd.DataFrame:
    """An empty table of ``kind`` with its columns (numeric ones as floats)."""
    columns = {**TABLES, **OPTIONAL_TABLES}[kind]
    return pd.DataFrame({c: pd.Series(dtype=float if c in NUMERIC.get(kind, {}) else object) for c in columns})


def _read_table(folder: Path, name: str, kind: str | None = None) -> pd.DataFrame:
    """Read ``folder/name`` as a table of ``kind`` (default: the table named ``name``)."""
    kind = kind or name
    columns = {**TABLES, **OPTIONAL_TABLES}[kind]
    path = folder / name
    if not path.is_file():
        raise InputError("file is missing", file=path, hint="see docs/data-format.md for the layout")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot be read as CSV: {exc}", file=path) from None
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty", file=path, hint="it needs at least the header line: "
                         + ",".join(columns)) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=path,
                         hint="expected columns: " + ",".join(columns))
    df = df.map(str.strip)
    for column, required in NUMERIC.get(kind, {}).items():
        if column not in df.columns:
            continue
        values = []
        for i, text in enumerate(df[column]):
            row = i + 2  # header is line 1
            if text == "":
                if required:
                    raise InputError("value is missing", file=path, row=row, column=column)
                values.append(math.nan)
                continue
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"'{text}' is not a number", file=path, row=row, column=column,
                                 hint="write a plain decimal number such as 12.5") from None
            if not math.isfinite(value):
                raise InputError(f"'{text}' is not a finite number", file=path, row=row, column=column)
            if column in NON_NEGATIVE and value < 0:
                raise InputError(f"{column} must not be negative (got {text})", file=path, row=row,
                                 column=column)
            if column == "capacity_mt" and value == 0:
                raise InputError("capacity must be > 0, or empty for a link that is not binding",
                                 file=path, row=row, column=column)
            values.append(value)
        df[column] = pd.Series(values, index=df.index, dtype=float)
    return df


def _pydantic_error(exc: ValidationError, file: Path, where: str) -> InputError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or where
    msg = first["msg"].removeprefix("Value error, ")
    return InputError(f"[{where}] {loc}: {msg}", file=file)


def load(name_or_dir: str | Path) -> Scenario:
    """Read and validate a dataset: a built-in name (see :func:`builtin_datasets`) or a folder."""
    folder = dataset_path(name_or_dir)
    toml_path = folder / "model.toml"
    doc = read_toml(toml_path)
    for section in ("model", "focus", "parameters", "commodities", "corridors"):
        if section not in doc:
            raise InputError(f"missing [{section}] section", file=toml_path,
                             hint="see docs/data-format.md")
    _check_model_section(doc["model"], toml_path)
    parameters, commodities, corridors, segments = {}, {}, {}, {}
    for kind, target, cls in (("parameters", parameters, Parameter),
                              ("commodities", commodities, Commodity),
                              ("corridors", corridors, Corridor),
                              ("segments", segments, Segment)):
        for name, body in doc.get(kind, {}).items():
            if not isinstance(body, dict):
                raise InputError(f"[{kind}.{name}] must be a table", file=toml_path)
            try:
                target[name] = cls(name=name, **body)
            except ValidationError as exc:
                raise _pydantic_error(exc, toml_path, f"{kind}.{name}") from None
    try:
        focus = Focus(**doc["focus"]) if isinstance(doc["focus"], dict) else None
    except ValidationError as exc:
        raise _pydantic_error(exc, toml_path, "focus") from None
    if focus is None:
        raise InputError("[focus] must be a table", file=toml_path)
    tables = {name: _read_table(folder, name) for name in TABLES}
    politics = None
    if (folder / "politics.toml").is_file():
        politics = load_politics(folder / "politics.toml")
        if (folder / "politics_sources.csv").is_file():
            extra = _read_table(folder, "politics_sources.csv", kind="sources.csv")
            merged = pd.concat([tables["sources.csv"], extra], ignore_index=True)
            tables["sources.csv"] = merged.drop_duplicates(subset=["id", "title", "url"]).reset_index(drop=True)
        for name, c in politics.sd.spec.constants.items():
            if name in parameters:
                continue  # shared with the network (e.g. demand growth): model.toml's entry governs
            lo, hi = c.bounds
            try:
                parameters[name] = Parameter(name=name, value=c.value, min=lo, max=hi, unit=c.unit,
                                             source=c.source, description=c.doc, kind=c.kind)
            except ValidationError as exc:
                raise _pydantic_error(exc, folder / "politics.toml", f"constants.{name}") from None
    calibration = {}
    if (folder / "calibration.toml").is_file():
        calibration = read_toml(folder / "calibration.toml")
    scenario = Scenario(name=str(doc["model"].get("name", folder.name)), path=folder,
                        model=doc["model"], parameters=parameters, commodities=commodities,
                        corridors=corridors, tables=tables, focus=focus, segments=segments,
                        calibration=calibration,
                        politics=politics)
    if (folder / "observations.csv").is_file():
        scenario.observations = _read_table(folder, "observations.csv")
    validate(scenario)
    if (folder / "checks.toml").is_file():
        scenario.checks = load_checks(folder / "checks.toml", scenario)
    free = scenario.model.get("calibration", {}).get("free", [])
    for name in free:
        if name not in parameters:
            close = difflib.get_close_matches(name, list(parameters), n=3)
            raise InputError(f"[model] calibration.free names an unknown parameter '{name}'", file=toml_path,
                             hint=("did you mean " + ", ".join(close) + "?") if close else "see 'multivector params'")
    if (folder / "posterior.csv").is_file() or (folder / "posterior.toml").is_file():
        scenario.posterior_samples, scenario.posterior_provenance = _read_posterior(folder, free, parameters)
    history = politics.history if politics is not None else None
    if (folder / "history_posterior.csv").is_file() or (folder / "history_posterior.toml").is_file():
        if history is None:
            raise InputError("a history posterior is stored but politics.toml declares no [history]",
                             file=folder / "history_posterior.csv", hint="remove the two history_posterior files")
        scenario.history_posterior_samples, scenario.history_posterior_provenance = _read_posterior(
            folder, history.free, parameters, stem="history_posterior", flag="--politics")
    return scenario


def _read_posterior(folder: Path, free: list[str], parameters: dict, stem: str = "posterior",
                    flag: str = "--posterior") -> tuple[pd.DataFrame, dict]:
    """STEM.csv (the free coefficients, the model discrepancy and log_prob, one row per sample) and
    STEM.toml, checked: both files, exactly those columns, every value a finite number, every
    coefficient inside its range and the discrepancy positive; a bad file's error names ``calibrate
    FOLDER FLAG --write``, the command that makes it again."""
    csv_path, toml_path = folder / f"{stem}.csv", folder / f"{stem}.toml"
    remake = f"multivector calibrate {folder} {flag} --write"
    for path in (csv_path, toml_path):
        if not path.is_file():
            raise InputError("the posterior is stored in two files and this one is missing", file=path,
                             hint=f"make both again: {remake}")
    provenance = read_toml(toml_path)
    try:
        samples = pd.read_csv(csv_path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"is not a readable CSV table: {exc}", file=csv_path, hint=remake) from None
    expected = [*free, "discrepancy", "log_prob"]
    if list(samples.columns) != expected or samples.empty:
        raise InputError("columns must be the free coefficients, discrepancy and log_prob, with "
                         "one row or more: " + ", ".join(expected), file=csv_path,
                         hint=f"the free coefficients changed since it was made, or it predates the model "
                              f"discrepancy? {remake}")
    for column in expected:
        values = pd.to_numeric(samples[column], errors="coerce").to_numpy(dtype=float)
        lo, hi = ((parameters[column].min, parameters[column].max) if column in parameters else
                  (1e-300, np.inf) if column == "discrepancy" else (-np.inf, np.inf))
        bad = ~np.isfinite(values) | (values < lo - 1e-9 * abs(lo)) | (values > hi + 1e-9 * abs(hi))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"'{samples[column].iloc[i]}' is not a finite number"
                             + (f" inside {column}'s range {lo:g}–{hi:g}" if column in parameters else
                                " above zero" if column == "discrepancy" else ""),
                             file=csv_path, row=i + 2, column=column, hint=remake)
        samples[column] = values
    return samples, provenance


CAPACITIES = ("soft", "hard")


def _check_model_section(model: dict, path: Path) -> None:
    """The [model] table's own fields: types a later step would otherwise trip over."""
    year = model.get("base_year", 2024)
    if not isinstance(year, int) or isinstance(year, bool):
        raise InputError(f"[model] base_year must be a whole year, not {year!r}", file=path, hint="e.g. base_year = 2024")
    for key in ("overland_corridors",):
        if not isinstance(model.get(key, []), list):
            raise InputError(f"[model] {key} must be a list of corridor names", file=path)
    if model.get("capacities", "soft") not in CAPACITIES:
        raise InputError(f"[model] capacities must be one of {', '.join(CAPACITIES)}, not {model.get('capacities')!r}",
                         file=path, hint='"hard": no facility above its capacity; "soft": freight queues past it')
    detour = model.get("route_detour_max")
    if detour is not None and (isinstance(detour, bool) or not isinstance(detour, (int, float)) or not detour > 1):
        raise InputError(f"[model] route_detour_max must be a number above 1, not {detour!r}", file=path,
                         hint="e.g. route_detour_max = 3.0 (no route longer than 3 times the shortest), "
                              "or leave it out for no bound")
    kinds = model.get("gateway_kinds", GATEWAY_KINDS)
    if not isinstance(kinds, (list, tuple)) or not all(isinstance(k, str) for k in kinds):
        raise InputError(f"[model] gateway_kinds must be a list of node kinds, not {kinds!r}", file=path,
                         hint="e.g. gateway_kinds = " + "[" + ", ".join(f'"{k}"' for k in GATEWAY_KINDS) + "]")
    for k in kinds:
        if k not in NODE_KINDS:
            close = difflib.get_close_matches(k, NODE_KINDS, n=3)
            raise InputError(f"[model] gateway_kinds names unknown node kind '{k}'", file=path,
                             hint=("did you mean " + ", ".join(close) + "? " if close else "")
                             + "node kinds: " + ", ".join(NODE_KINDS))
    cal = model.get("calibration", {})
    if not isinstance(cal, dict) or not isinstance(cal.get("free", []), list):
        raise InputError("[model] calibration.free must be a list of parameter names", file=path)


# ------------------------------------------------------------------------------------------------
# validation

def _file(s: Scenario, name: str):
    return (s.path / name) if s.path else name


def validate(s: Scenario) -> None:
    """Check cross-references between the tables; raise InputError on the first problem."""
    nodes = s.nodes
    node_ids = set(nodes["id"])
    f = _file(s, "nodes.csv")
    for table, frame in (("nodes.csv", nodes), ("links.csv", s.links), ("sources.csv", s.sources)):
        empty = frame.index[frame["id"] == ""]
        if len(empty):
            raise InputError("id is empty", file=_file(s, table), row=int(empty[0]) + 2, column="id",
                             hint="every row needs its own id")
    f = _file(s, "sources.csv")
    for i, kind in enumerate(s.sources["kind"]):
        if kind not in ("figure", "assumption"):
            raise InputError(f"kind must be 'figure' or 'assumption', not '{kind}'", file=f, row=i + 2,
                             column="kind")
    f = _file(s, "nodes.csv")
    dup = nodes["id"][nodes["id"].duplicated()]
    if len(dup):
        raise InputError(f"duplicate node id '{dup.iloc[0]}'", file=f, row=int(dup.index[0]) + 2,
                         column="id")
    for i, kind in enumerate(nodes["kind"]):
        if kind not in NODE_KINDS:
            raise InputError(f"unknown node kind '{kind}'", file=f, row=i + 2, column="kind",
                             hint="one of " + ", ".join(NODE_KINDS))

    links = s.links
    f = _file(s, "links.csv")
    dup = links["id"][links["id"].duplicated()]
    if len(dup):
        raise InputError(f"duplicate link id '{dup.iloc[0]}'", file=f, row=int(dup.index[0]) + 2,
                         column="id", hint="every link needs its own id")
    for i, row in links.iterrows():
        r = i + 2
        for col in ("from", "to"):
            if row[col] not in node_ids:
                close = difflib.get_close_matches(row[col], list(node_ids), n=3)
                raise InputError(f"unknown node '{row[col]}'", file=f, row=r, column=col,
                                 hint=("did you mean " + ", ".join(close) + "?") if close
                                 else "add it to nodes.csv")
        if row["from"] == row["to"]:
            raise InputError("a link must join two different nodes", file=f, row=r, column="to")
        if row["mode"] not in MODES:
            raise InputError(f"unknown mode '{row['mode']}'", file=f, row=r, column="mode",
                             hint="one of " + ", ".join(MODES))
        if row["mode"] == "rail" and row["gauge_mm"] not in (1435.0, 1520.0):
            raise InputError("a rail link needs gauge_mm 1435 or 1520", file=f, row=r,
                             column="gauge_mm")
        if row["length_km"] <= 0:
            raise InputError("length_km must be > 0", file=f, row=r, column="length_km")
        for c in filter(None, row["commodities"].split(";")):
            if c not in s.commodities:
                raise InputError(f"unknown commodity '{c}'", file=f, row=r, column="commodities",
                                 hint="defined in model.toml: " + ", ".join(s.commodities))
        if not row["commodities"]:
            raise InputError("no commodity may use this link", file=f, row=r, column="commodities",
                             hint="list them separated by ';', e.g. container;bulk")
        _check_risk(s, row["risk_class"], f, r)
        covered = _check_sources(s, row, f, r, ["length_km", "capacity_mt", "extra_time_h", "extra_cost_usd"])
        # a ship's limit is usually its own; where it is a port's (a tramp voyage), a source says so
        if row["mode"] in QUEUE_MODES and math.isnan(row["capacity_mt"]) and "capacity_mt" not in covered:
            raise InputError(f"a {row['mode']} link needs a capacity", file=f, row=r, column="capacity_mt",
                             hint="ferries and tankers are capacity-bound: give Mt per year, or leave it "
                                  "empty with capacity_mt=ID in sources naming why (e.g. its port is the limit)")

    f = _file(s, "transfers.csv")
    seen = set()
    for i, row in s.transfers.iterrows():
        r = i + 2
        if row["node"] not in node_ids:
            raise InputError(f"unknown node '{row['node']}'", file=f, row=r, column="node")
        pair, both_ways = transfer_layers(row["between"])
        if len(pair) != 2 or any(p not in LAYERS for p in pair) or pair[0] == pair[1]:
            raise InputError(f"'{row['between']}' is not two different layers joined by '|' (both ways) "
                             "or '>' (one way)", file=f, row=r, column="between",
                             hint="e.g. rail_1435|rail_1520 or rail_1435>rail_1520; layers: " + ", ".join(LAYERS))
        ways = {(row["node"], *pair)} | ({(row["node"], *pair[::-1])} if both_ways else set())
        if ways & seen:
            raise InputError(f"transfer {row['between']} at {row['node']}: another row already serves "
                             "that direction", file=f, row=r, column="between",
                             hint="keep one 'a|b' row, or one 'a>b' row per direction")
        seen |= ways
        _check_risk(s, row["risk_class"], f, r)
        _check_sources(s, row, f, r, ["capacity_mt", "time_h", "cost_usd"])
    _check_commodity_premiums(s)
    _check_demand_factors(s)
    _check_segments(s)

    f = _file(s, "demand.csv")
    for i, row in s.demand.iterrows():
        r = i + 2
        for col in ("origin", "destination"):
            if row[col] not in node_ids:
                raise InputError(f"unknown node '{row[col]}'", file=f, row=r, column=col)
        if row["commodity"] not in s.commodities:
            raise InputError(f"unknown commodity '{row['commodity']}'", file=f, row=r,
                             column="commodity", hint="defined in model.toml: " + ", ".join(s.commodities))
        if row["origin"] == row["destination"]:
            raise InputError("origin equals destination", file=f, row=r, column="destination")
        check_source_id(s, row["source"], f, r, "source")
    if s.demand.duplicated(["origin", "destination", "commodity", "year"]).any():
        i = int(s.demand.index[s.demand.duplicated(["origin", "destination", "commodity", "year"])][0])
        raise InputError("duplicate OD pair for the same commodity and year", file=f, row=i + 2)

    f = _file(s, "timeline.csv")
    first, last = network_years(s)
    for i, row in s.timeline.iterrows():
        if not first <= row["year"] <= last:
            raise InputError(f"year {row['year']:g} lies outside the network's years {first}-{last}", file=f,
                             row=i + 2, column="year",
                             hint=f"demand.csv starts in {first}" + (f" and the political register ends in {last}"
                                                                    if s.politics is not None else ""))
        if row["parameter"] not in s.parameters:
            close = difflib.get_close_matches(row["parameter"], list(s.parameters), n=3)
            raise InputError(f"unknown parameter '{row['parameter']}'", file=f, row=i + 2,
                             column="parameter",
                             hint=("did you mean " + ", ".join(close) + "?") if close else None)
        check_source_id(s, row["source"], f, i + 2, "source")

    f = _file(s, "targets.csv")
    for i, row in s.targets.iterrows():
        check_source_id(s, row["source"], f, i + 2, "source")
        if int(row["year"]) > LAST_OBSERVED_YEAR:
            raise InputError(f"calibration targets must be observations up to {LAST_OBSERVED_YEAR}", file=f,
                             row=i + 2, column="year")
        _check_metric(s, row["metric"], f, i + 2)
        if "error" in s.targets.columns and row["error"] == 0:
            raise InputError("an observation error of 0 cannot be fitted", file=f, row=i + 2, column="error",
                             hint="the relative error of the observation, e.g. 0.1; empty for the default 0.1")
        if "bound" in s.targets.columns and row["bound"] not in ("", UPPER_BOUND):
            raise InputError(f"unknown bound '{row['bound']}'", file=f, row=i + 2, column="bound",
                             hint=f"'{UPPER_BOUND}' for an observation that is a ceiling (the model may fall "
                                  "short of it at no cost); empty for a count")
    _check_targets_within_capacity(s)
    _check_observations(s)
    _check_history(s)

    f = _file(s, "nodes.csv")
    for i, row in nodes.iterrows():
        if not (-90 <= row["lat"] <= 90):
            raise InputError(f"latitude {row['lat']} out of range", file=f, row=i + 2, column="lat")
        if not (-180 <= row["lon"] <= 180):
            raise InputError(f"longitude {row['lon']} out of range", file=f, row=i + 2, column="lon")
        check_source_id(s, row["source"], f, i + 2, "source")

    toml = _file(s, "model.toml")
    if s.politics is not None:
        for name, c in s.politics.sd.spec.constants.items():
            check_source_id(s, c.source, _file(s, "politics.toml"), None, f"constants.{name}.source")
        cf = s.politics.counterfactual
        for name, source in (cf.sources.items() if cf else ()):
            check_source_id(s, source, _file(s, "politics.toml"), None, f"outcomes.counterfactual.{name}.source")
    for p in s.parameters.values():
        check_source_id(s, p.source, toml, None, f"parameters.{p.name}.source")
    for c in s.commodities.values():
        _check_sources(s, c.model_dump(), toml, None, COMMODITY_NUMBERS, column=f"commodities.{c.name}.sources")
    for c in s.corridors.values():
        for n in c.via_nodes + c.variants:
            if n not in node_ids:
                raise InputError(f"[corridors.{c.name}] unknown node '{n}'", file=toml)
        for commodity in c.commodities:
            if commodity not in s.commodities:
                raise InputError(f"[corridors.{c.name}] commodities: unknown commodity '{commodity}'", file=toml,
                                 hint="defined in model.toml: " + ", ".join(s.commodities))
    for name in s.overland_corridors:
        if name not in s.corridors:
            raise InputError(f"[model] overland_corridors names unknown corridor '{name}'", file=toml)
    # every number the engine reads is a parameter of the dataset, with its source: no silent defaults
    for name in required_parameters(s):
        if name not in s.parameters:
            raise InputError(f"model.toml has no parameter '{name}'", file=toml,
                             hint=f"add [parameters.{name}] with value, min, max, unit and source")
    _check_focus(s, toml)


#: An output path: dotted keys of the run document (node ids may hold '-').
OUTPUT_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_][A-Za-z0-9_\-]*)*")
SERIES_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def is_absolute_error(unit: str) -> bool:
    """Whether an observation's ``error`` is absolute (its unit ends in 'absolute error') or relative."""
    return unit.strip().endswith(ABSOLUTE_ERROR)


def _check_history(s: Scenario) -> None:
    """politics.toml's [history] against observations.csv: every series it names is there, with a value in
    the history's years (an initial stock: in its year); a compared series with absolute errors (a count)
    is compared as it stands, not divided by another."""
    h = s.politics.history if s.politics is not None else None
    if h is None:
        return
    obs, f = s.observations, _file(s, "politics.toml")
    for key in ("inputs", "initial", "compare"):
        for name, link in getattr(h, key).items():
            if link.equation is not None:  # an initial stock stated as an equation: compiled with the model
                continue
            if link.series is None:        # a stated input value: its source must resolve
                check_source_id(s, link.source, f, None, f"history.inputs.{name}.source")
                continue
            rows = obs[obs["series"] == link.series] if obs is not None and len(obs) else obs
            here = f"[history.{key}.{name}] series '{link.series}'"
            if rows is None or rows.empty:
                raise InputError(f"{here} is not in observations.csv", file=f,
                                 hint="multivector data observations DATASET lists the series")
            years = set(rows["year"].astype(int))
            wanted = {link.year} if key == "initial" else set(range(h.start, h.stop))
            if not years & wanted:
                raise InputError(f"{here} has no value in " + (f"{link.year}" if key == "initial" else
                                 f"{h.start}–{h.stop - 1}") + f" (it has {', '.join(map(str, sorted(years)))})",
                                 file=f)
            if key == "compare" and is_absolute_error(rows["unit"].iloc[0]) and link.per is not None:
                raise InputError(f"{here} states absolute errors, which cannot be divided by '{link.per}'", file=f,
                                 hint="compare a series with absolute errors as it stands (drop per)")
            if link.per is not None:
                per = obs[obs["series"] == link.per]
                if per.empty or is_absolute_error(per["unit"].iloc[0]):
                    raise InputError(f"[history.{key}.{name}] per '{link.per}' is not a series of observations.csv "
                                     "with relative errors", file=f, hint="per names the series each value is divided by")


def _check_observations(s: Scenario) -> None:
    """observations.csv: a series name, a whole year up to 2024, a finite value, an error > 0, a unit, a
    known source, an output path (optional) of valid syntax; one row per series and year; one unit and one
    output per series."""
    obs = s.observations
    if obs is None or obs.empty:
        return
    f = _file(s, "observations.csv")
    first, heads = {}, {}
    for i, row in obs.iterrows():
        r = i + 2
        if not SERIES_NAME.fullmatch(row["series"]):
            raise InputError(f"'{row['series']}' is not a series name", file=f, row=r, column="series",
                             hint="letters, digits and '_', starting with a letter, e.g. national_fund_usd_bn")
        year = row["year"]
        if year != int(year):
            raise InputError(f"'{year:g}' is not a whole year", file=f, row=r, column="year")
        if year > LAST_OBSERVED_YEAR:
            raise InputError(f"year {int(year)} is after {LAST_OBSERVED_YEAR}", file=f, row=r, column="year",
                             hint=f"observations after {LAST_OBSERVED_YEAR} are held out for testing and must not "
                                  "be in the dataset")
        if not row["unit"]:
            raise InputError("no unit given", file=f, row=r, column="unit",
                             hint=f"e.g. USD bn; end it in '{ABSOLUTE_ERROR}' when error is in the unit, "
                                  "e.g. 'events, absolute error'")
        if row["error"] <= 0:
            raise InputError("the observation error must be > 0", file=f, row=r, column="error",
                             hint="the relative error, e.g. 0.05 for 5%, or an absolute one when the unit ends in "
                                  f"'{ABSOLUTE_ERROR}'")
        if row["value"] == 0 and not is_absolute_error(row["unit"]):
            raise InputError("a relative error cannot describe a value of 0", file=f, row=r, column="error",
                             hint=f"end the unit in '{ABSOLUTE_ERROR}' and give the error in the unit")
        check_source_id(s, row["source"], f, r, "source")
        output = row["output"]
        if output:
            if not OUTPUT_PATH.fullmatch(output):
                raise InputError(f"'{output}' is not a dotted path into the run document", file=f, row=r,
                                 column="output", hint="e.g. corridors.NAME.tonnes or gateways.NODE.teu; "
                                 "leave it empty when the model does not report the series")
            parts = output.split(".")
            directional = len(parts) == 5 and parts[2] == "directions" and parts[3] in DIRECTIONS
            if parts[0] == "corridors" and (len(parts) != 3 and not directional or parts[1] not in s.corridors):
                raise InputError(f"'{output}' is not corridors.NAME.KEY or corridors.NAME.directions.DIRECTION.KEY "
                                 "with a known corridor", file=f, row=r,
                                 column="output", hint="corridors: " + ", ".join(s.corridors))
            if parts[0] == "gateways" and (len(parts) < 3 or parts[1] not in s.gateways):
                raise InputError(f"'{output}' is not gateways.NODE.KEY with a gateway node", file=f, row=r,
                                 column="output", hint="e.g. gateways.NODE.tonnes")
        key = (row["series"], int(year))
        if key in first:
            raise InputError(f"a second value for series '{row['series']}' in {int(year)} (row {first[key]} has "
                             "one)", file=f, row=r, column="year", hint="one row per series and year")
        first[key] = r
        head = heads.setdefault(row["series"], row)
        for column in ("unit", "output"):
            if row[column] != head[column]:
                raise InputError(f"series '{row['series']}' has {column} '{row[column]}' here but "
                                 f"'{head[column]}' on an earlier row", file=f, row=r, column=column,
                                 hint=f"a series has one {column}; give it a new name if it differs")


def required_parameters(s: Scenario) -> list[str]:
    """Every parameter the engine reads for this dataset: declared in model.toml, or the load fails."""
    links = s.links
    layers = sorted({link_layer(m, g) for m, g in zip(links["mode"], links["gauge_mm"])})
    capacitated = sorted({link_layer(m, g) for m, g, c in zip(links["mode"], links["gauge_mm"], links["capacity_mt"])
                          if not math.isnan(c)})
    needed = ["vdf_alpha", "vdf_beta", "queue_scale_h", "queue_max_ratio", "focus_tariff_factor"]
    needed += [f"{k}_{c}" for c in s.commodities for k in ("logit_scale", "vot")]
    needed += [f"{k}_{layer}" for layer in layers for k in ("speed", "tariff")]
    needed += [f"capacity_factor_{layer}" for layer in capacitated]
    needed += [f"capacity_factor_{g}" for g in s.capacity_groups]
    needed += [f"tariff_factor_{g}" for g in s.tariff_groups]
    needed += [f"demand_growth_{c}" for c in sorted(set(s.demand["commodity"]))]
    needed += [seg.share_parameter for seg in s.segments.values()]
    if len(s.transfers):
        needed += ["transfer_time_factor"]
        # a gauge change queues only where it has a capacity; without one the scale would be dead
        if any(is_rail_transfer(b) for b in s.transfers.loc[s.transfers["capacity_mt"].notna(), "between"]):
            needed += ["queue_scale_rail_h"]
        if s.transfers["capacity_mt"].notna().any():
            needed += ["capacity_factor_transfer"]
    return needed


def _check_focus(s: Scenario, toml) -> None:
    """[focus]: a country that appears in nodes.csv, known featured parameters and table corridors."""
    focus = s.focus
    codes = {c for text in s.nodes["country"] for c in text.split("/")}
    if focus.country not in codes:
        raise InputError(f"[focus] country '{focus.country}' is not a country in nodes.csv", file=toml,
                         hint="use the code of nodes.csv's country column, e.g. " + ", ".join(sorted(codes)[:5]))
    for name in [*focus.featured_parameters, *focus.argument]:
        if name not in s.parameters:
            close = difflib.get_close_matches(name, list(s.parameters), n=3)
            raise InputError(f"[focus] featured_parameters or argument names an unknown parameter '{name}'", file=toml,
                             hint=("did you mean " + ", ".join(close) + "?") if close else "see 'multivector params'")
    for column in focus.table:
        parts = column.value.split(".")
        if parts[0] == "corridors" and (len(parts) != 3 or parts[1] not in s.corridors):
            raise InputError(f"[focus] table column '{column.label}': '{column.value}' is not corridors.NAME.KEY "
                             "with a known corridor", file=toml, hint="corridors: " + ", ".join(s.corridors))


def _check_risk(s: Scenario, risk: str, f, r: int) -> None:
    if risk and f"risk_{risk}" not in s.parameters:
        raise InputError(f"risk class '{risk}' has no parameter 'risk_{risk}' in model.toml",
                         file=f, row=r, column="risk_class")


def _check_commodity_premiums(s: Scenario) -> None:
    """Refuse a parameter that reads as one commodity's own premium for a risk class
    (``risk_<class>_<commodity>``) but is none that :func:`risk_parameter` would read: the engine would
    never charge it."""
    classes = s.risk_classes
    charged = {risk_parameter(c, m, s.parameters) for c in classes for m in s.commodities}
    for name in s.parameters:
        c = max((c for c in classes if name.startswith(f"risk_{c}_")), key=len, default=None)
        if c is not None and name not in charged:
            raise InputError(f"parameter '{name}' reads as risk class '{c}' for commodity "
                             f"'{name[len(c) + 6:]}', which model.toml does not define", file=_file(s, "model.toml"),
                             hint=f"a commodity's own premium is risk_{c}_<commodity>; commodities: "
                                  + ", ".join(s.commodities))


def _check_demand_factors(s: Scenario) -> None:
    """Refuse ``demand_factor_<name>`` for a commodity demand.csv does not carry: the engine scales
    only the commodities it routes, so the factor would do nothing."""
    carried = set(s.demand["commodity"])
    for name in s.parameters:
        commodity = name.removeprefix(DEMAND_FACTOR)
        if commodity != name and commodity not in carried:
            raise InputError(f"parameter '{name}' scales commodity '{commodity}', which demand.csv does not "
                             "carry", file=_file(s, "model.toml"),
                             hint=f"a commodity's demand factor is {DEMAND_FACTOR}<commodity>; commodities in "
                                  "demand.csv: " + ", ".join(sorted(carried)))


def _check_segments(s: Scenario) -> None:
    """[segments.NAME]: a known commodity, risk classes the network has, a declared premium that is
    never negative, a share parameter kept within 0-1, and shares of one commodity that cannot add up
    to more than its demand."""
    toml = _file(s, "model.toml")
    classes = s.risk_classes
    ceiling: dict[str, float] = {}
    for seg in s.segments.values():
        where = f"[segments.{seg.name}]"
        if seg.commodity not in s.commodities:
            raise InputError(f"{where} commodity '{seg.commodity}' is not defined", file=toml,
                             hint="commodities: " + ", ".join(s.commodities))
        if not seg.avoids:
            raise InputError(f"{where} avoids no risk class", file=toml, hint="e.g. avoids = [\"CLASS\"]")
        for risk in seg.avoids:
            if risk not in classes:
                raise InputError(f"{where} avoids '{risk}', a risk class no link or transfer has", file=toml,
                                 hint="risk classes: " + (", ".join(classes) or "none"))
        check_source_id(s, seg.source, toml, None, f"segments.{seg.name}.source")
        if seg.premium is not None:
            premium = s.parameters.get(seg.premium)
            if premium is None:
                raise InputError(f"{where} premium '{seg.premium}' is not a parameter", file=toml,
                                 hint=f"declare [parameters.{seg.premium}] or drop 'premium' (the segment "
                                      "then leaves the routes it avoids)")
            if premium.min < 0:
                raise InputError(f"parameter '{premium.name}' ranges down to {premium.min:g}; a segment's "
                                 "premium for a route it avoids is not negative", file=toml, hint="set min >= 0")
        share = s.parameters.get(seg.share_parameter)
        if share is not None and not (0.0 <= share.min and share.max <= 1.0):
            raise InputError(f"parameter '{share.name}' ranges over [{share.min:g}, {share.max:g}]; a share "
                             "of demand lies within [0, 1]", file=toml, hint="set min >= 0 and max <= 1")
        ceiling[seg.commodity] = ceiling.get(seg.commodity, 0.0) + (share.max if share is not None else 0.0)
    for commodity, total in ceiling.items():
        if total > 1.0:
            raise InputError(f"the segments of '{commodity}' can take {total:g} of its demand (their shares' "
                             "maxima add up to more than 1)", file=toml, hint="lower the share parameters' max")


def check_source_id(s: Scenario, sid: str, f, r, column: str) -> None:
    """Refuse a source id that is neither in the dataset's sources nor an ``assumption:`` note."""
    if not sid:
        raise InputError("no source given", file=f, row=r, column=column,
                         hint="name a figure id or an assumption id (A-...) from sources.csv")
    if sid.startswith("assumption:") or sid in _source_ids(s):
        return
    close = difflib.get_close_matches(sid, list(s.sources["id"]), n=3)
    raise InputError(f"source '{sid}' is not in sources.csv", file=f, row=r, column=column,
                     hint=("did you mean " + ", ".join(close) + "?") if close else "add a row to sources.csv")


def _source_ids(s: Scenario) -> set:
    """The ids in the scenario's sources table, kept while that table is the same object (a dataset's
    load checks some 500 source ids against it)."""
    frame = s.sources
    kept = s.__dict__.get("_source_ids")
    if kept is None or kept[0] is not frame:
        kept = s.__dict__["_source_ids"] = (frame, set(frame["id"]))
    return kept[1]


def _check_sources(s: Scenario, row, f, r: int | None, fields: list[str], column: str = "sources") -> dict[str, str]:
    """Every non-empty numeric field of a row (a table's, or a TOML section's) must be covered by a
    `field=ID` or `*=ID` entry of its ``sources``; returns the row's entries, field to source id."""
    covered = {}
    for entry in filter(None, row["sources"].split(";")):
        if "=" not in entry:
            raise InputError(f"'{entry}' is not field=ID", file=f, row=r, column=column,
                             hint="e.g. length_km=NF-60;capacity_mt=BOR-02 or *=A-ESTIMATE")
        key, sid = (x.strip() for x in entry.split("=", 1))
        check_source_id(s, sid, f, r, column)
        covered[key] = sid
    for name in fields:
        value = row[name]
        if isinstance(value, float) and not math.isnan(value) and name not in covered \
                and "*" not in covered:
            raise InputError(f"{name} = {value:g} has no source", file=f, row=r, column=column,
                             hint=f"add {name}=ID (a figure or an A- assumption in sources.csv)")
    return covered


def network_years(s: Scenario) -> tuple[int, int]:
    """The years the network can be solved for: from demand.csv's first year to the political register's
    last (or demand.csv's last year grown on for a century when there is none)."""
    years = s.demand["year"].astype(int)
    first = int(years.min()) if len(years) else s.base_year
    last = int(s.politics.sd.spec.sim.stop) if s.politics is not None else int(years.max() if len(years) else first) + 100
    return first, last


def _check_targets_within_capacity(s: Scenario) -> None:
    """A volume target above the most its facility could ever carry (nominal capacity times the top of its
    capacity factors' ranges) cannot be matched: one of the two numbers is wrong."""
    f = _file(s, "targets.csv")
    for i, row in s.targets.iterrows():
        kind, ident, unit = row["metric"].split(":")[:3]
        if unit != "mt" or kind not in ("link", "transfer"):
            continue
        table, key, where = (s.links, "id", "links.csv") if kind == "link" else (s.transfers, "node", "transfers.csv")
        rows = table.index[table[key] == ident]
        if not len(rows) or table.loc[rows, "capacity_mt"].isna().any():
            continue           # an uncapacitated facility under this id: no bound
        # the engine scales a capacity by its layer's factor (transfers': capacity_factor_transfer) and
        # each of its groups'; the most a facility can carry takes each at the top of its range
        most = 0.0
        for j in rows:
            layer = "transfer" if kind == "transfer" else link_layer(table.at[j, "mode"], table.at[j, "gauge_mm"])
            groups = capacity_groups_of(table.at[j, "capacity_group"]) if "capacity_group" in table.columns else []
            names = [f"capacity_factor_{layer}"] + [f"capacity_factor_{g}" for g in groups]
            most += table.at[j, "capacity_mt"] * math.prod(s.parameters[n].max for n in names if n in s.parameters)
        if row["observed"] > most * (1 + 1e-9):
            line = int(rows[0]) + 2
            raise InputError(f"observed {row['observed']:g} Mt in {int(row['year'])} on {kind} '{ident}' exceeds the "
                             f"most it can carry, {most:g} Mt/yr ({where} row {line} times its capacity factors' "
                             "upper bounds)", file=f, row=i + 2, column="observed",
                             hint=f"check the observation, or raise the capacity in {where}")


METRIC_UNITS = {"corridor": ("teu", "tonnes", "time_h"), "link": ("mt", "teu"), "transfer": ("mt", "teu"),
                "gateway": ("tonnes", "teu")}


def _check_metric(s: Scenario, metric: str, f, row: int) -> None:
    """A target's metric is KIND:ID:UNIT — corridor:NAME:teu|tonnes|time_h, link:ID:mt|teu,
    transfer:NODE:mt|teu, gateway:NODE:tonnes|teu[:DIRECTION], corridor:NAME:tonnes|teu:DIRECTION or
    corridor:NAME:time_h:COMMODITY (what ``calibrate.metric_values`` can compute)."""
    parts = metric.split(":")
    example = ("e.g. corridor:NAME:tonnes, corridor:NAME:teu:eastbound, corridor:NAME:time_h:container, "
               "link:LINK_ID:mt, transfer:NODE_ID:teu, gateway:NODE_ID:tonnes:westbound")
    if parts[:1] == ["corridor"] and len(parts) == 4 and parts[2] == "time_h":
        if parts[3] not in s.commodities:       # a corridor's time is one commodity's, not a direction's
            raise InputError(f"metric '{metric}': a corridor's time is one commodity's: corridor:NAME:time_h:COMMODITY",
                             file=f, row=row, column="metric", hint="commodities: " + ", ".join(s.commodities))
        parts = parts[:3]
    elif parts[0] in ("gateway", "corridor") and len(parts) == 4:
        if parts[3] not in DIRECTIONS:
            raise InputError(f"metric '{metric}': a {parts[0]}'s direction is one of " + ", ".join(DIRECTIONS),
                             file=f, row=row, column="metric")
        parts = parts[:3]
    if len(parts) != 3 or parts[0] not in METRIC_UNITS:
        raise InputError(f"metric '{metric}' is not KIND:ID:UNIT", file=f, row=row, column="metric", hint=example)
    kind, ident, unit = parts
    if unit not in METRIC_UNITS[kind]:
        raise InputError(f"metric '{metric}': a {kind} is measured in " + " or ".join(METRIC_UNITS[kind]),
                         file=f, row=row, column="metric")
    known = {"corridor": set(s.corridors), "link": set(s.links["id"]), "transfer": set(s.nodes["id"]),
             "gateway": set(s.gateways)}[kind]
    if ident not in known:
        close = difflib.get_close_matches(ident, sorted(known), n=3)
        what = f"gateway (a node of kind {', '.join(s.gateway_kinds)})" if kind == "gateway" else kind
        raise InputError(f"metric '{metric}' names an unknown {what} '{ident}'", file=f, row=row, column="metric",
                         hint=("did you mean " + ", ".join(close) + "?") if close else example)


def check_sources_table(s: Scenario) -> list[str]:
    """Problems with sources.csv itself: figures without URL/title, assumptions without rationale."""
    problems = []
    f = _file(s, "sources.csv")
    dup = s.sources["id"][s.sources["id"].duplicated()]
    if len(dup):
        problems.append(f"{f}: duplicate source id '{dup.iloc[0]}'")
    for i, row in s.sources.iterrows():
        where = f"{f}: row {i + 2} ({row['id']})"
        if row["kind"] == "figure":
            if not row["title"] or not row["url"]:
                problems.append(f"{where}: a figure needs a title and a URL")
        elif row["kind"] == "assumption":
            if not row["title"] or not row["note"]:
                problems.append(f"{where}: an assumption needs a statement (title) and a rationale (note)")
        else:
            problems.append(f"{where}: kind must be 'figure' or 'assumption', not '{row['kind']}'")
    return problems
