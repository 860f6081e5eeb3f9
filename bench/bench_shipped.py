"""What the hard capacities' rationing after the equilibrium costs (run by hand; not a test).

    python bench/bench_shipped.py [--label NAME] [--repeats 30]

Simulates the Kazakhstan dataset's default run (17 years, one run) and its 200 disruption streams (each
year a batch of 200 runs and 200 counterfactuals), keeps every year's arguments of
``FreightModel._shipped`` (the crude spill to a field's outlets with room, then the pro-rata rationing),
and times those calls again from Python: the median over ``--repeats`` of all 17 single-run years, and
over five of the 34 batch years. Run it on two checkouts (``PYTHONPATH=<src>``) in turn to compare.
"""

from __future__ import annotations

import argparse
import statistics
import time

import multivector as mv
from multivector.freight import model as fm


def captured():
    """The ``_shipped`` calls of one default run and of the CLI's 200 streams, with copies of their inputs."""
    s = mv.load("kazakhstan")
    mv.simulate(s)
    calls, original = [], fm.FreightModel._shipped

    def spy(self, flow, load, capacity):
        calls.append((self, flow.copy(), load.copy(), capacity.copy()))
        return original(self, flow, load, capacity)

    fm.FreightModel._shipped = spy
    try:
        mv.simulate(s)
        mv.simulate(s, 200, seed=0)
    finally:
        fm.FreightModel._shipped = original
    return calls[:17], calls[17:]


def median_seconds(calls, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for self, flow, load, capacity in calls:
            fm.FreightModel._shipped(self, flow, load, capacity)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    single, batch = captured()
    print(f"{args.label}: 17 single-run years {1e3 * median_seconds(single, args.repeats):.2f} ms; "
          f"{len(batch)} batch years (N = {batch[0][1].shape[1]}) {1e3 * median_seconds(batch, 5):.1f} ms")


if __name__ == "__main__":
    main()
