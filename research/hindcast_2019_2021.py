"""Hindcast 2019-2021 with the 2022-2024 calibration: a research experiment, not part of the package.

    python research/hindcast_2019_2021.py

The Kazakhstan dataset carries 2019-2021 inputs (demand scaled from 2022, those years' sea rates, no
Russia premium before the 2022 sanctions: A-*-PRE2022 in sources.csv) and the observed corridors
(observations.csv). This solves the network alone for 2019-2024 twice: as the dataset has it, and with
the calibrated premium in every year (a user's ``--set`` holds over the timeline). Prints both beside
the observations whose output the run reports.
"""

from __future__ import annotations

import warnings

import multivector as mv
from multivector.views.document import document_value, run_document

YEARS = list(range(2019, 2025))


def main() -> None:
    s = mv.load("kazakhstan")
    premium = s.defaults()["risk_russia_transit"]
    obs = s.observations
    # the network's outputs only: history.* rows name the political register's history run
    obs = obs[(obs["output"] != "") & ~obs["output"].str.startswith("history.") & obs["year"].isin(YEARS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = {"as in the dataset (no premium before 2022)": run_document(mv.simulate(s, years=YEARS, coupled=False)),
                f"premium {premium:,.0f} USD/TEU in every year": run_document(mv.simulate(
                    s, years=YEARS, coupled=False, overrides={"risk_russia_transit": premium}))}
    for output, rows in obs.sort_values("year").groupby("output", sort=False):
        print(output)
        print("  observed: " + ", ".join(f"{int(y)} {v:,.0f}" for y, v in zip(rows["year"], rows["value"])))
        for label, doc in docs.items():
            print(f"  {label}: " + ", ".join(f"{y} {document_value(doc, output, i):,.0f}" for i, y in enumerate(YEARS)))


if __name__ == "__main__":
    main()
