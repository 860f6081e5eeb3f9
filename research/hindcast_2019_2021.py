"""Hindcast 2019-2021 with the 2022-2024 calibration: a research experiment, not part of the package.

    python research/hindcast_2019_2021.py

Copies the Kazakhstan dataset to a temporary folder, gives it 2019-2021 inputs from
research/backcast_2019_2021.md (demand scaled from 2022, the year's sea rate, 2022's capacity factors),
and solves the network alone for 2019-2024 twice: with the Russia-transit premium switched off before
2022 (the sanctions had not begun) and with the calibrated premium in every year. Prints the corridors
beside the pre-war observations. The shipped dataset is not touched.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd

import multivector as mv
from multivector.views.document import run_document

YEARS = (2019, 2020, 2021)
# Asia-Europe container exports (backcast A7/B7: 16.5 M TEU in 2019, -5.2% in 2020, +14.7% in 2021)
# against 2022's 15.38 M (CTS-01: 16.58 M in 2023 = +7.8% on 2022)
CONTAINER = {2019: 16.5 / 15.38, 2020: 16.5 * 0.948 / 15.38, 2021: 16.5 * 0.948 * 1.147 / 15.38}
# Kazakh crude exports: 78% of production in 2019-2020 (90.5, 85.7 Mt), 67.6 Mt printed for 2021, over 2022's 64.3
CRUDE = {2019: 90.5 * 0.78 / 64.3, 2020: 85.7 * 0.78 / 64.3, 2021: 67.6 / 64.3}
# Shanghai-Rotterdam lane, annual average USD/FEU (backcast B8), as USD per TEU-km over the 19,632 km Suez route
SEA = {2019: 1900, 2020: 1800, 2021: 11900}
# observed, westbound boxes and ministry tonnes (backcast A1, A2, A4)
OBSERVED = {
    "northern TEU (ERA x 0.635)": {2019: 333000 * 0.635, 2020: 546900 * 0.67, 2021: 439500},
    "middle Mt (ministry)": {2019: 0.759, 2020: 0.783, 2021: 0.586},
    "Baku/Alat TEU (all, both ways)": {2019: 35152, 2020: 40345, 2021: 45025},
}


def with_inputs(folder: Path, premium_before_2022: bool) -> None:
    demand = pd.read_csv(folder / "demand.csv")
    base = demand[demand["year"] == 2022]
    rows = []
    for year in YEARS:
        part = base.copy()
        part["year"] = year
        box = part["commodity"] == "container"
        crude = (part["commodity"] == "crude") & (part["destination"] != "N-CN-ALO")
        part.loc[box, "volume"] = (part.loc[box, "volume"] * CONTAINER[year]).round()
        part.loc[crude, "volume"] = (part.loc[crude, "volume"] * CRUDE[year]).round(3)
        rows.append(part)
    pd.concat(rows + [demand], ignore_index=True).to_csv(folder / "demand.csv", index=False)
    timeline = pd.read_csv(folder / "timeline.csv")
    same = timeline[(timeline["year"] == 2022) & timeline["parameter"].str.startswith(("capacity_factor", "risk_red"))]
    add = []
    for year in YEARS:
        add += [(year, p, v, s) for p, v, s in zip(same["parameter"], same["value"], same["source"])]
        add.append((year, "tariff_sea", round(SEA[year] / 2 / 19632, 4), "A-SEA-RATE-YEAR"))
        if not premium_before_2022:
            add.append((year, "risk_russia_transit", 0.0, "A-RISK-RUSSIA"))
    pd.concat([pd.DataFrame(add, columns=timeline.columns), timeline], ignore_index=True).to_csv(
        folder / "timeline.csv", index=False)
    toml = (folder / "model.toml").read_text()       # 2021's sea rate lies above the range kept for 2025 on
    start = toml.index("[parameters.tariff_sea]")
    (folder / "model.toml").write_text(toml[:start] + toml[start:].replace("max = 0.21", "max = 0.31", 1))


def corridors(folder: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = mv.load(folder)
        doc = run_document(mv.simulate(s, years=list(range(2019, 2025)), coupled=False))
    c = doc["corridors"]
    alat = doc["gateways"]["N-AZ-ALT"]["teu"]
    return {"northern TEU": c["northern"]["teu"], "middle Mt": [x / 1e6 for x in c["middle"]["tonnes"]],
            "Baku/Alat TEU": alat, "northern h": c["northern"]["transit_time_h"]}


def main() -> None:
    out = {}
    for premium in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "kz"
            subprocess.run([sys.executable, "-m", "multivector", "data", "copy", "kazakhstan", str(folder)],
                           check=True, stdout=subprocess.DEVNULL)
            with_inputs(folder, premium)
            out[premium] = corridors(folder)
    print("year | " + " | ".join(OBSERVED))
    for i, year in enumerate(YEARS):
        print(year, " | ".join(f"{OBSERVED[k][year]:,.3g}" for k in OBSERVED))
    for premium, res in out.items():
        print("\npremium before 2022:", "calibrated (2,000 USD/TEU)" if premium else "none")
        for key, values in res.items():
            print(f"  {key}: " + ", ".join(f"{v:,.3g}" for v in values) + "   (2019-2024)")


if __name__ == "__main__":
    main()
