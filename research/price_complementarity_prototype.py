"""Prototype (research, not the package): the capacity-constrained equilibrium of one run-year solved
as one complementarity problem in the loads and the capacity prices together, by a semismooth Newton
method on the Fischer-Burmeister function, in place of the outer price loop (research/next_structural_steps.md).

    python research/price_complementarity_prototype.py [--bulk-scale 0.0068] [--min-steps 150]

It simulates an 8-trajectory Morris design of the built-in dataset with ``logit_scale_bulk`` held
where a fit lets bulk choose by cost (bench_price_loop.py --steps-only), keeps the inputs of the first
run-year the price loop needs at least ``--min-steps`` Newton steps for, and solves it again here.

Unknowns: the solved groups' loads ``v`` and the active capacities' prices ``u``. Residual: the loads'
fixed point ``F(v, u) - v`` (scaled by the largest load), and for each capacity
``a - mid(0, top, a - b)`` with ``a = u/U``, ``b = (c - v_h)/c`` and ``top`` the price cap over ``U``: zero
exactly where the price is 0 and the facility has room, the price is between its bounds and the capacity
is met, or the price is at the cap and the facility over it (the excess rationed); ``--no-box`` takes the
Fischer-Burmeister function ``a + b - sqrt(a^2 + b^2)`` instead, with no cap. Jacobian: the equilibrium's
own ``-(I + M T')`` and ``-M_u`` (the kernels ``_newton_system`` and ``_price_sensitivity``), bordered by
the residual's partials; a backtracking line search on half the squared residual. What it showed
(2026-12-06): the Jacobian agrees with finite differences to 1e-13 of its entries; the captured case
(163 Newton steps in the price loop) converges in 6 iterations (5 without the cap); on a case of the bulk segment
with a premium (403 steps in the loop) Fischer-Burmeister without the cap stalls with prices past it,
the box form converges in 5 (research/next_structural_steps.md).
"""

from __future__ import annotations

import argparse
import inspect
import warnings

import numpy as np


def capture(bulk_scale: float, min_steps: int) -> dict:
    """The kernel inputs of the first batch-year in which some run takes the price loop ``min_steps``
    Newton steps, copied before the kernel runs, and that run's column."""
    import multivector as mv
    import multivector.freight.sue as sue
    from multivector.explore.ensemble import make_design

    names = list(inspect.signature(sue._equilibrium.py_func).parameters)[1:]
    found: dict = {}
    pool = sue._in_threads

    def grab(kernel, cols, *args):
        before = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        out = pool(kernel, cols, *args)
        steps = args[names.index("steps")]
        if not found and steps.max() >= min_steps:
            col = int(steps.argmax())
            found.update(dict(zip(names, before)), column=col, reference=int(steps.max()),
                         reference_v=args[names.index("v")][:, col].copy(),
                         reference_price=args[names.index("price")][:, col].copy())
        return out

    s = mv.load("kazakhstan")
    samples = make_design(s, 8, sampler="morris", seed=0).samples()
    samples["logit_scale_bulk"] = bulk_scale
    sue._in_threads = grab
    try:
        mv.simulate(s, samples=samples, seed=0)
    finally:
        sue._in_threads = pool
    if not found:
        raise SystemExit(f"no run-year took {min_steps} Newton steps; lower --min-steps")
    return found


def solve(g: dict, box: bool = True, max_iter: int = 100, price_scale: float = 1e8) -> None:
    from multivector.freight import sue

    j = g["column"]
    jac = tuple(g[x] for x in ("routes", "od_route_ptr", "route_ptr", "route_res", "route_slot", "slot_res",
                               "od_slot_ptr", "route_pattern", "pattern_ptr", "pattern_res"))
    costs = tuple(g[x] for x in ("vot", "theta", "available", "bounds", "cross_ptr", "cross_idx", "cross_val",
                                 "route_crossing", "member_ptr", "members", "kind", "capacity", "free_time",
                                 "alpha", "beta", "scale", "rho_max"))
    hp, cap, prices = g["hard_pos"], g["cap"][:, j], g["price"].copy()
    act = np.flatnonzero((hp >= 0) & np.isfinite(cap))

    def loads(v, u):
        prices[:, j] = u
        split = sue._split_for(j, sue._priced_cost(j, g["base_cost"], g["ap_ptr"], g["ap_idx"], g["ap_val"],
                                                   prices, g["pw"]), *costs)
        p, _, f, _ = sue._run_point(v.copy(), j, split, g["route_demand"], g["lf"], *costs)
        return p, f

    v, u = g["v"][:, j].copy(), prices[:, j].copy()
    n_c, n_a = len(v), len(act)
    scale = None

    top = g["max_price"] / price_scale

    def residual(v, u, f):
        a, b = u[act] / price_scale, (cap[act] - v[hp[act]]) / cap[act]
        if box:     # a = mid(0, top, a - b): a price between its bounds only where the capacity is met
            return np.concatenate([(f - v) / scale, a - np.clip(a - b, 0.0, top)]), a, b
        return np.concatenate([(f - v) / scale, a + b - np.hypot(a, b)]), a, b

    print(f"run-year's price loop: {g['reference']} Newton steps")
    for it in range(max_iter):
        p, f = loads(v, u)
        scale = scale or max(np.abs(f).max(), 1e-6)
        r, a, b = residual(v, u, f)
        merit = 0.5 * r @ r
        print(f"{it:3d} merit {merit:.3e}  largest load/capacity {np.max(v[hp[act]] / cap[act]):.4f}")
        if np.abs(r).max() < 1e-7:
            break
        m, d, low = sue._newton_system(v, p, j, g["route_demand"], g["lf"], *jac, *costs)
        inverse = np.column_stack([sue._newton_solve(m, d, low, e) for e in np.eye(n_c)])
        by_price = sue._price_sensitivity(p, j, n_c, g["route_demand"], g["lf"], *jac, g["pw"], g["theta"])
        if box:     # the mid function's pieces: the middle one reads the slack, the bounds the price
            middle = (a - b > 0) & (a - b < top)
            da, db = np.where(middle, 0.0, 1.0), np.where(middle, 1.0, 0.0)
        else:
            r_ab = np.hypot(a, b)
            da = np.where(r_ab > 0, 1 - a / np.where(r_ab > 0, r_ab, 1), 1 - 2 ** -0.5)
            db = np.where(r_ab > 0, 1 - b / np.where(r_ab > 0, r_ab, 1), 1 - 2 ** -0.5)
        jm = np.zeros((n_c + n_a, n_c + n_a))
        jm[:n_c, :n_c] = -np.linalg.inv(inverse) / scale
        jm[:n_c, n_c:] = -by_price[:, hp[act]] / scale
        jm[n_c + np.arange(n_a), n_c + np.arange(n_a)] = da / price_scale
        jm[n_c + np.arange(n_a), hp[act]] += -db / cap[act]
        step = np.linalg.lstsq(jm, -r, rcond=None)[0]
        t = 1.0
        for _ in range(30):
            v2 = np.maximum(v + t * step[:n_c], 0.0)
            u2 = u.copy()
            u2[act] += t * step[n_c:]
            if 0.5 * np.sum(residual(v2, u2, loads(v2, u2)[1])[0] ** 2) <= (1 - 1e-4 * t) * merit:
                break
            t *= 0.5
        v, u = v2, u2
    moved = np.abs(u[act] - g["reference_price"][act]) / 1e6
    print(f"prices against the price loop's: largest difference {moved.max():.2f} USD/t; highest price "
          f"{u[act].max() / 1e6:.1f} USD/t (cap {g['max_price'] / 1e6:.0f}); solved loads within "
          f"{np.max(np.abs(v - g['reference_v']) / np.maximum(np.abs(g['reference_v']), 1e-9)):.2%} of the loop's")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulk-scale", type=float, default=0.0068)
    ap.add_argument("--min-steps", type=int, default=150)
    ap.add_argument("--no-box", action="store_true", help="Fischer-Burmeister without the price cap")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    solve(capture(args.bulk_scale, args.min_steps), box=not args.no_box)


if __name__ == "__main__":
    main()
