"""The model's 2025 prediction for the main corridors and gateways, written down before any 2025 outcome
is looked up (issue 12). Run from the repository root:

    python research/predict_2025.py > research/prediction_2025.md

It does what ``validate --from posterior`` does, without observed values: the posterior ensemble (the
network's calibrated coefficients and the history-matched political constants drawn from the dataset's
stored posteriors, each run with its own CPC-outage stream) is simulated through 2025 with the 2025
timeline's inputs and the 2025 CPC outages placed, and each output's median and 5-95% band are
printed, volumes and times widened by the calibration's model discrepancy. Nothing here reads a 2025
volume.
"""

import numpy as np
import pandas as pd

import multivector as mv
from multivector.model.posterior import posterior_of, stored_posteriors
from multivector.views.document import run_document, runs_last
from multivector.views.validation import DISCREPANCY_KINDS, _values

OUTPUTS = [
    ("corridors.northern.teu", "northern corridor (1520 transit), TEU westbound"),
    ("corridors.middle.teu", "Middle Corridor, TEU westbound"),
    ("corridors.middle.tonnes", "Middle Corridor, tonnes westbound (containers and bulk)"),
    ("corridors.southern.teu", "southern corridor via Iran, TEU"),
    ("corridors.sea.teu", "deep sea (contestable share), TEU"),
    ("corridors.oil_cpc.tonnes", "Kazakh crude via CPC, t"),
    ("corridors.oil_samara.tonnes", "Kazakh crude via Atyrau-Samara, t"),
    ("corridors.oil_btc.tonnes", "Kazakh crude via Aktau-Baku-BTC, t"),
    ("corridors.northern.transit_time_h", "northern door-to-door time, h"),
    ("corridors.middle.transit_time_h", "Middle Corridor door-to-door time, h"),
    ("gateways.N-BX-DOS.directions.westbound.teu", "Dostyk-Alashankou westbound, TEU"),
    ("gateways.N-BX-DOS.directions.eastbound.tonnes", "Dostyk-Alashankou eastbound (Kazakh exports), t"),
    ("gateways.N-BX-KHG.directions.westbound.teu", "Altynkol-Khorgos westbound, TEU"),
    ("gateways.N-BX-KHG.directions.eastbound.tonnes", "Altynkol-Khorgos eastbound (Kazakh exports), t"),
    ("gateways.N-BX-MZL.teu", "Zabaikalsk-Manzhouli, TEU"),
    ("gateways.N-BX-EHT.teu", "Zamyn-Uud-Erenhot, TEU"),
    ("gateways.N-BX-MAL.teu", "Brest-Malaszewicze, TEU"),
    ("gateways.N-KZ-AKU.teu", "Aktau, TEU"),
    ("gateways.N-KZ-KUR.teu", "Kuryk, TEU"),
    ("gateways.N-AZ-ALT.teu", "Baku/Alat, TEU"),
    ("gateways.N-BX-BOL.tonnes", "Bolashak-Serhetyaka, t"),
    ("focus_overland_share", "Kazakhstan's share of overland Asia-Europe TEU"),
    ("corridors.oil_china.tonnes", "Kazakh crude to China (Atasu-Alashankou), t"),
    ("gateways.N-BX-DOS.tonnes", "Dostyk-Alashankou, both directions, t"),
    ("gateways.N-BX-KHG.tonnes", "Altynkol-Khorgos, both directions, t"),
    ("gateways.N-KZ-AKU.tonnes", "Aktau, all cargo in the model, t"),
    ("gateways.N-KZ-KUR.tonnes", "Kuryk, all cargo in the model, t"),
    ("stocks.fiscal_space", "National Fund at year end, USD bn"),
]


#: The 2025 CPC outages known as inputs, as a share of the year's capacity: the Kropotkinskaya strike
#: (17 Feb to end May, flows down ~30%: DIS-05) ~0.085, and the SPM losses from 29 Nov (about half the
#: terminal for December: CPC-OUT-2025-11 in research/timeline_2019_2025.md) ~0.04. The April SPM
#: closure order (DIS-06) has no known duration and is left out. The runs' own outage draws come on top.
CPC_2025 = 0.13


def main(runs: int = 200, seed: int = 0) -> None:
    scenario = mv.load("kazakhstan")
    years = [2024, 2025]
    rows = [(o, y) for o, _ in OUTPUTS for y in years]
    obs = pd.DataFrame({"output": [o for o, _ in rows], "year": [y for _, y in rows]})
    posts = stored_posteriors(scenario)
    samples = pd.concat([post.draw(runs, seed + k).reset_index(drop=True) for k, post in enumerate(posts)], axis=1)
    ds = mv.simulate(scenario, runs, years=years, seed=seed, samples=samples,
                     events={("cpc_outage", 2025): CPC_2025})
    per_run = _values(run_document(ds, top=0, reduce=runs_last), obs, years)
    kind = obs["output"].str.rsplit(".", n=1).str[-1].isin(DISCREPANCY_KINDS).to_numpy()
    network = posterior_of(scenario)           # the network's: its discrepancy widens volumes and times
    per_run[kind] = network.predictive(per_run[kind], seed)
    median = np.nanmedian(per_run, axis=1)
    p5, p95 = np.nanpercentile(per_run, 5, axis=1), np.nanpercentile(per_run, 95, axis=1)
    label = dict(OUTPUTS)
    print("| output | 2024 median (5-95%) | 2025 median (5-95%) | 2025/2024 |")
    print("|---|--:|--:|--:|")
    for i, (o, _) in enumerate(OUTPUTS):
        a, b = 2 * i, 2 * i + 1
        fmt = (lambda v: f"{v:.3f}") if o == "focus_overland_share" else (lambda v: f"{v:,.0f}")
        ratio = median[b] / median[a] if median[a] else float("nan")
        print(f"| {label[o]} | {fmt(median[a])} ({fmt(p5[a])}-{fmt(p95[a])}) | "
              f"{fmt(median[b])} ({fmt(p5[b])}-{fmt(p95[b])}) | {ratio:.2f} |")
    print(f"\n{runs} runs drawn from both stored posteriors, seed {seed}, CPC outage placed in 2025: {CPC_2025}; "
          f"model discrepancy median {float(network.samples['discrepancy'].median()):.3f}")


if __name__ == "__main__":
    main()
