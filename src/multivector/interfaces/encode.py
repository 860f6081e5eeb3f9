"""Turning library results into JSON: numpy scalars into numbers, NaN and infinities into null,
plotly figures into their JSON dicts (the dashboard hands them to ``Plotly.react`` as they are)."""

from __future__ import annotations

import json
import math

import numpy as np


def json_safe(x):
    """``x`` with NaN and infinities as None, numpy scalars and arrays as plain numbers and lists."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def figure_json(fig) -> dict:
    """A plotly figure as the ``{data, layout}`` dict plotly.js reads."""
    return json.loads(fig.to_json())


def records(frame) -> list[dict]:
    """A DataFrame's rows as JSON-safe dicts."""
    return json_safe(frame.to_dict(orient="records"))
