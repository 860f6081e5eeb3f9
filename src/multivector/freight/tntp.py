"""Readers and a writer for the TNTP transportation-network file formats.

The TNTP formats (https://github.com/bstabler/TransportationNetworks) are plain text:

* ``*_net.tntp``: a metadata block (``<NUMBER OF ZONES> 24``, ``<NUMBER OF NODES> 24``,
  ``<FIRST THRU NODE> 1``, ``<NUMBER OF LINKS> 76``, ..., ``<END OF METADATA>``), then one link
  per row: ``init_node term_node capacity length free_flow_time b power speed toll link_type ;``.
  Lines starting with ``~`` are comments (the column header is one).
* ``*_trips.tntp``: a metadata block (``<NUMBER OF ZONES>``, optionally ``<TOTAL OD FLOW>``), then
  ``Origin N`` lines each followed by ``destination : demand;`` entries.
* ``*_flow.tntp``: a header line ``From To Volume Cost`` and one link per row.

Node and zone numbering
-----------------------
Node ids in the returned arrays are **1-based, exactly as in the files** (``TntpNetwork.init``,
``TntpNetwork.term``, ``TntpFlows.init``, ``TntpFlows.term``). Zones are nodes ``1..n_zones``.
The OD matrix returned by :func:`read_trips` is a dense ``[n_zones, n_zones]`` array indexed
0-based: ``od[o - 1, d - 1]`` is the demand from zone ``o`` to zone ``d``.

``first_thru_node`` is kept 1-based as in the file: nodes with id ``< first_thru_node`` are
zone centroids that paths may start or end at but never pass through.

Every problem with a file raises :class:`multivector.errors.InputError` naming the file, the line
(``row``, 1-based line number in the file), the column and what is wrong.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multivector.errors import InputError
from multivector.io import atomic_write

__all__ = [
    "NET_COLUMNS",
    "TntpFlows",
    "TntpNetwork",
    "read_flows",
    "read_network",
    "read_trips",
    "write_flows",
]

#: Column names of a TNTP network file, in file order.
NET_COLUMNS = (
    "init_node",
    "term_node",
    "capacity",
    "length",
    "free_flow_time",
    "b",
    "power",
    "speed",
    "toll",
    "link_type",
)

_META_RE = re.compile(r"^\s*<\s*([^>]+?)\s*>\s*(.*?)\s*$")
_NET_HINT = (
    "a TNTP network file starts with a metadata block such as '<NUMBER OF ZONES> 24', "
    "'<NUMBER OF NODES> 24', '<FIRST THRU NODE> 1', '<NUMBER OF LINKS> 76', '<END OF METADATA>'"
)
_TRIPS_HINT = (
    "a TNTP trips file starts with '<NUMBER OF ZONES> n' and '<END OF METADATA>', then "
    "'Origin o' lines followed by 'd : demand;' entries"
)


@dataclass(frozen=True)
class TntpNetwork:
    """A TNTP road network. Arrays have one entry per link, in file order.

    ``init`` and ``term`` hold **1-based** node ids as written in the file; subtract 1 for
    0-based indices. ``first_thru_node`` is 1-based too (nodes with a smaller id may not be
    passed through). Link travel time follows the BPR function
    ``t = fftt * (1 + b * (flow / capacity) ** power)``.
    """

    n_zones: int
    n_nodes: int
    first_thru_node: int
    init: np.ndarray
    term: np.ndarray
    capacity: np.ndarray
    length: np.ndarray
    fftt: np.ndarray
    b: np.ndarray
    power: np.ndarray
    speed: np.ndarray
    toll: np.ndarray
    link_type: np.ndarray
    source: str | None = None
    toll_factor: float = 0.0          # <TOLL FACTOR>: generalised cost = time + toll_factor × toll + ...
    distance_factor: float = 0.0      # <DISTANCE FACTOR>: ... + distance_factor × length

    @property
    def n_links(self) -> int:
        return int(self.init.shape[0])


@dataclass(frozen=True)
class TntpFlows:
    """Link flows from a TNTP flow file. ``init``/``term`` are 1-based node ids as in the file."""

    init: np.ndarray
    term: np.ndarray
    volume: np.ndarray
    cost: np.ndarray
    source: str | None = None


# --------------------------------------------------------------------------------------------
# helpers


def _read_lines(path) -> list[str]:
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=p, hint="check the path")
    if p.is_dir():
        raise InputError("is a directory, expected a TNTP file", file=p)
    try:
        with open(p, encoding="utf-8-sig") as fh:
            return fh.read().splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text file ({exc.reason})", file=p, hint="TNTP files are plain text") from exc


def _parse_metadata(lines: list[str], path, hint: str) -> tuple[dict[str, tuple[str, int]], int]:
    """Parse the ``<KEY> value`` block. Returns ({KEY: (value, line_no)}, index of first body line)."""
    meta: dict[str, tuple[str, int]] = {}
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("~"):
            continue
        m = _META_RE.match(line)
        if m is None:
            if not meta:
                raise InputError(
                    f"expected a metadata line like '<NUMBER OF ZONES> 24', found {line[:60]!r}",
                    file=path,
                    row=i + 1,
                    hint="this does not look like a TNTP file; " + hint,
                )
            raise InputError(
                f"expected a metadata line '<KEY> value' or '<END OF METADATA>', found {line[:60]!r}",
                file=path,
                row=i + 1,
                hint=hint,
            )
        key = " ".join(m.group(1).upper().split())
        if key == "END OF METADATA":
            return meta, i + 1
        meta[key] = (m.group(2), i + 1)
    raise InputError(
        "no '<END OF METADATA>' line found",
        file=path,
        row=len(lines) if lines else None,
        hint="this does not look like a TNTP file; " + hint,
    )


def _meta_int(meta, key: str, path, *, end_row: int, hint: str, minimum: int = 0) -> int:
    if key not in meta:
        raise InputError(f"metadata '<{key}>' is missing", file=path, row=end_row, hint=hint)
    text, row = meta[key]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise InputError(f"'<{key}>' must be an integer, got {text!r}", file=path, row=row, column=key)
    if value < minimum:
        raise InputError(f"'<{key}>' must be at least {minimum}, got {text!r}", file=path, row=row, column=key)
    return int(value)


def _number(token: str, path, row: int, column: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise InputError(f"value {token!r} is not a number", file=path, row=row, column=column) from None
    if not math.isfinite(value):
        raise InputError(f"value {token!r} is not finite", file=path, row=row, column=column)
    return value


def _integer(token: str, path, row: int, column: str) -> int:
    value = _number(token, path, row, column)
    if value != int(value):
        raise InputError(f"value {token!r} is not an integer", file=path, row=row, column=column)
    return int(value)


def _split_row(raw: str) -> list[str]:
    return raw.strip().removesuffix(";").split()


# --------------------------------------------------------------------------------------------
# network


def _meta_float(meta: dict, key: str, path) -> float:
    """An optional non-negative number from the metadata (0 when absent)."""
    if key not in meta:
        return 0.0
    text, row = meta[key]
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"'<{key}> {text}' is not a number", file=path, row=row, column=key) from None
    if not (np.isfinite(value) and value >= 0):
        raise InputError(f"'<{key}> {text}' must be a finite number >= 0", file=path, row=row, column=key)
    return value


def read_network(path) -> TntpNetwork:
    """Read a TNTP ``_net.tntp`` file.

    Required metadata: ``<NUMBER OF ZONES>``, ``<NUMBER OF NODES>``, ``<NUMBER OF LINKS>`` and
    ``<END OF METADATA>``; ``<FIRST THRU NODE>`` defaults to 1 (every node may be passed through)
    when absent. Checks that the number of link rows matches ``<NUMBER OF LINKS>``, that every value
    is numeric, node ids lie in ``1..n_nodes``, capacity, free-flow time, ``b`` and ``power`` are
    not negative, and capacity is positive wherever ``b > 0``.
    """
    path = str(path)
    lines = _read_lines(path)
    meta, body = _parse_metadata(lines, path, _NET_HINT)
    end_row = body  # 1-based line number of <END OF METADATA>
    n_zones = _meta_int(meta, "NUMBER OF ZONES", path, end_row=end_row, hint=_NET_HINT, minimum=1)
    n_nodes = _meta_int(meta, "NUMBER OF NODES", path, end_row=end_row, hint=_NET_HINT, minimum=1)
    n_links = _meta_int(meta, "NUMBER OF LINKS", path, end_row=end_row, hint=_NET_HINT, minimum=0)
    if "FIRST THRU NODE" in meta:
        first_thru = _meta_int(meta, "FIRST THRU NODE", path, end_row=end_row, hint=_NET_HINT, minimum=1)
    else:
        first_thru = 1
    if n_zones > n_nodes:
        raise InputError(
            f"'<NUMBER OF ZONES>' ({n_zones}) exceeds '<NUMBER OF NODES>' ({n_nodes})",
            file=path,
            row=meta["NUMBER OF ZONES"][1],
            column="NUMBER OF ZONES",
            hint="zones are nodes 1..n_zones",
        )

    rows: list[list[float]] = []
    row_lines: list[int] = []
    ncol = len(NET_COLUMNS)
    for i in range(body, len(lines)):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("~"):
            continue
        lineno = i + 1
        tokens = _split_row(raw)
        if not tokens:
            continue
        if len(tokens) < ncol:
            raise InputError(
                f"expected {ncol} values ({' '.join(NET_COLUMNS)}), found {len(tokens)}",
                file=path,
                row=lineno,
                column=NET_COLUMNS[len(tokens)],
            )
        if len(tokens) > ncol:
            raise InputError(
                f"expected {ncol} values ({' '.join(NET_COLUMNS)}), found {len(tokens)}",
                file=path,
                row=lineno,
                hint="a TNTP link row ends with ';'",
            )
        values = [_number(tok, path, lineno, col) for tok, col in zip(tokens, NET_COLUMNS)]
        for col in ("init_node", "term_node"):
            k = NET_COLUMNS.index(col)
            node = _integer(tokens[k], path, lineno, col)
            if not 1 <= node <= n_nodes:
                raise InputError(
                    f"node {node} is out of range 1..{n_nodes}",
                    file=path,
                    row=lineno,
                    column=col,
                    hint="'<NUMBER OF NODES>' in the metadata sets the range",
                )
        for col in ("capacity", "free_flow_time", "b", "power", "length"):
            k = NET_COLUMNS.index(col)
            if values[k] < 0:
                raise InputError(f"{col} must not be negative, got {tokens[k]!r}", file=path, row=lineno, column=col)
        if values[NET_COLUMNS.index("capacity")] == 0 and values[NET_COLUMNS.index("b")] > 0:
            raise InputError(
                "capacity is 0 on a link with b > 0",
                file=path,
                row=lineno,
                column="capacity",
                hint="the BPR function divides by capacity; give a positive capacity or b = 0",
            )
        rows.append(values)
        row_lines.append(lineno)

    if len(rows) != n_links:
        text, meta_row = meta["NUMBER OF LINKS"]
        where = row_lines[n_links] if len(rows) > n_links else (len(lines) or None)
        raise InputError(
            f"metadata '<NUMBER OF LINKS> {text}' (line {meta_row}) but the file has {len(rows)} link rows",
            file=path,
            row=where,
            hint="fix '<NUMBER OF LINKS>' or the link rows",
        )
    arr = np.array(rows, dtype=np.float64).reshape(len(rows), ncol)
    col = {name: arr[:, k] for k, name in enumerate(NET_COLUMNS)}
    link_type = col["link_type"]
    link_type = link_type.astype(np.int64) if np.all(link_type == np.round(link_type)) else link_type.copy()
    return TntpNetwork(
        n_zones=n_zones,
        n_nodes=n_nodes,
        first_thru_node=first_thru,
        init=col["init_node"].astype(np.int64),
        term=col["term_node"].astype(np.int64),
        capacity=col["capacity"].copy(),
        length=col["length"].copy(),
        fftt=col["free_flow_time"].copy(),
        b=col["b"].copy(),
        power=col["power"].copy(),
        speed=col["speed"].copy(),
        toll=col["toll"].copy(),
        link_type=link_type,
        source=path,
        toll_factor=_meta_float(meta, "TOLL FACTOR", path),
        distance_factor=_meta_float(meta, "DISTANCE FACTOR", path),
    )


# --------------------------------------------------------------------------------------------
# trips

_ORIGIN_RE = re.compile(r"^\s*origin\b\s*(.*?)\s*$", re.IGNORECASE)


def read_trips(path, n_zones: int | None = None) -> np.ndarray:
    """Read a TNTP ``_trips.tntp`` file into a dense ``[n_zones, n_zones]`` float array.

    ``od[o - 1, d - 1]`` is the demand from zone ``o`` to zone ``d`` (zones are 1-based in the
    file). Pass ``n_zones`` (e.g. ``network.n_zones``) to check the file agrees with the network.
    Raises :class:`InputError` for a missing header, a non-numeric value, a zone outside
    ``1..n_zones``, negative demand, a repeated origin-destination pair, or an entry before the
    first ``Origin`` line. A ``<TOTAL OD FLOW>`` that disagrees with the entries only warns
    (published files round it).
    """
    path = str(path)
    lines = _read_lines(path)
    meta, body = _parse_metadata(lines, path, _TRIPS_HINT)
    nz = _meta_int(meta, "NUMBER OF ZONES", path, end_row=body, hint=_TRIPS_HINT, minimum=1)
    if n_zones is not None and int(n_zones) != nz:
        raise InputError(
            f"'<NUMBER OF ZONES> {nz}' does not match the network's {int(n_zones)} zones",
            file=path,
            row=meta["NUMBER OF ZONES"][1],
            column="NUMBER OF ZONES",
            hint="use the trips file that belongs to this network",
        )
    od = np.zeros((nz, nz), dtype=np.float64)
    seen = np.zeros((nz, nz), dtype=bool)
    origin: int | None = None
    for i in range(body, len(lines)):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("~"):
            continue
        lineno = i + 1
        m = _ORIGIN_RE.match(stripped)
        if m:
            origin = _integer(m.group(1), path, lineno, "origin") if m.group(1) else None
            if origin is None:
                raise InputError("'Origin' line without a zone number", file=path, row=lineno, column="origin")
            if not 1 <= origin <= nz:
                raise InputError(
                    f"origin zone {origin} is out of range 1..{nz}",
                    file=path,
                    row=lineno,
                    column="origin",
                    hint="'<NUMBER OF ZONES>' sets the range",
                )
            continue
        if origin is None:
            raise InputError(
                f"demand entry before the first 'Origin' line: {stripped[:60]!r}",
                file=path,
                row=lineno,
                hint=_TRIPS_HINT,
            )
        for entry in stripped.split(";"):
            entry = entry.strip()
            if not entry:
                continue
            parts = entry.split(":")
            if len(parts) != 2:
                raise InputError(
                    f"expected 'destination : demand', found {entry[:60]!r}",
                    file=path,
                    row=lineno,
                    hint="entries are separated by ';'",
                )
            dest = _integer(parts[0].strip(), path, lineno, "destination")
            value = _number(parts[1].strip(), path, lineno, "demand")
            if not 1 <= dest <= nz:
                raise InputError(
                    f"trips from zone {origin} to unknown zone {dest} (zones are 1..{nz})",
                    file=path,
                    row=lineno,
                    column="destination",
                )
            if value < 0:
                raise InputError(
                    f"negative demand {parts[1].strip()} from zone {origin} to zone {dest}",
                    file=path,
                    row=lineno,
                    column="demand",
                )
            if seen[origin - 1, dest - 1]:
                raise InputError(
                    f"demand from zone {origin} to zone {dest} is given twice",
                    file=path,
                    row=lineno,
                    column="destination",
                )
            seen[origin - 1, dest - 1] = True
            od[origin - 1, dest - 1] = value
    if "TOTAL OD FLOW" in meta:
        text, row = meta["TOTAL OD FLOW"]
        try:
            declared = float(text)
        except ValueError:
            raise InputError(
                f"'<TOTAL OD FLOW>' must be a number, got {text!r}", file=path, row=row, column="TOTAL OD FLOW"
            ) from None
        total = float(od.sum())
        if abs(total - declared) > 1e-6 * max(1.0, abs(declared)):
            warnings.warn(
                f"{path}: line {row}: '<TOTAL OD FLOW> {text}' but the entries sum to {total:.6g}",
                UserWarning,
                stacklevel=2,
            )
    return od


# --------------------------------------------------------------------------------------------
# flows

_FLOW_COLUMNS = ("from", "to", "volume", "cost")


def read_flows(path) -> TntpFlows:
    """Read a TNTP ``_flow.tntp`` file (header ``From To Volume Cost``, one link per row).

    Node ids stay 1-based as in the file. Rows may end with ``;``; lines starting with ``~`` are
    comments.
    """
    path = str(path)
    lines = _read_lines(path)
    rows: list[list[float]] = []
    header_seen = False
    for i, raw in enumerate(lines):
        stripped = raw.strip()
        if not stripped or stripped.startswith("~"):
            continue
        lineno = i + 1
        tokens = _split_row(raw)
        if not header_seen:
            if [t.lower() for t in tokens[:4]] != list(_FLOW_COLUMNS):
                raise InputError(
                    f"expected the header 'From To Volume Cost', found {stripped[:60]!r}",
                    file=path,
                    row=lineno,
                    hint="this does not look like a TNTP flow file",
                )
            header_seen = True
            continue
        if len(tokens) != 4:
            raise InputError(
                f"expected 4 values (From To Volume Cost), found {len(tokens)}", file=path, row=lineno
            )
        a = _integer(tokens[0], path, lineno, "From")
        b = _integer(tokens[1], path, lineno, "To")
        vol = _number(tokens[2], path, lineno, "Volume")
        cost = _number(tokens[3], path, lineno, "Cost")
        rows.append([a, b, vol, cost])
    if not header_seen:
        raise InputError("empty file, expected the header 'From To Volume Cost'", file=path, row=None)
    arr = np.array(rows, dtype=np.float64).reshape(len(rows), 4)
    return TntpFlows(
        init=arr[:, 0].astype(np.int64),
        term=arr[:, 1].astype(np.int64),
        volume=arr[:, 2].copy(),
        cost=arr[:, 3].copy(),
        source=path,
    )


def write_flows(path, init, term, volume, cost) -> Path:
    """Write a TNTP flow file: a ``From\\tTo\\tVolume\\tCost`` header and one tab-separated row per link.

    ``init``/``term`` are written as given (TNTP uses 1-based node ids). Floats are written with
    ``repr`` so they read back exactly. The file is written to a temporary file in the same folder
    and renamed into place, so a failure never leaves a half-written file. Returns the path.
    """
    init = np.asarray(init)
    term = np.asarray(term)
    volume = np.asarray(volume, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    arrays = {"init": init, "term": term, "volume": volume, "cost": cost}
    for name, arr in arrays.items():
        if arr.ndim != 1:
            raise InputError(f"must be one-dimensional, got shape {arr.shape}", column=name)
    n = init.shape[0]
    for name, arr in arrays.items():
        if arr.shape[0] != n:
            raise InputError(
                f"has {arr.shape[0]} entries but init has {n}", column=name, hint="pass one value per link"
            )
    for name in ("init", "term"):
        arr = arrays[name]
        if arr.size and not np.all(np.isfinite(arr.astype(np.float64))):
            raise InputError("node ids must be finite integers", column=name)
        if arr.size and not np.all(arr.astype(np.float64) == np.round(arr.astype(np.float64))):
            raise InputError("node ids must be integers", column=name)
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("folder does not exist", file=folder, hint="create it first")

    def rows(fh):
        fh.write("From\tTo\tVolume\tCost\n")
        for a, b, v, c in zip(init.astype(np.int64).tolist(), term.astype(np.int64).tolist(),
                              volume.tolist(), cost.tolist()):
            fh.write(f"{a}\t{b}\t{v!r}\t{c!r}\n")

    return atomic_write(target, rows)
