"""OpenFisca speed on the rent-loan rules (rent_loan.py), two measurements.

a. One household per simulation, as OpenFisca's web API serves /calculate:
   SimulationBuilder().build_from_entities(tbs, situation) for the standard
   eligible household, then calculate('loan_amount') and
   calculate('eligible') for 2020-05. Warm-up, then --repeat timed
   evaluations; median (and p90) per evaluation, build and calculate also
   reported apart. The tax-benefit system is built once, as a server does;
   JSON parsing and response encoding of the web API are NOT included.

b. Vectorised: --households households in one simulation
   (build_default_simulation + set_input of numpy arrays), then
   calculate('loan_amount') + calculate('eligible') timed once per run
   (--batch-runs). Build time reported apart; input generation not timed.
   Inputs: numpy RNG (seed --seed, inputs.synthetic), or with
   --applications FILE the JSON lines of `guichet program generate`
   (the rows guichet's own caseload benchmark evaluates).

Output: machine-readable lines `openfisca key=value`.

    /var/tmp/ofenv/bin/python bench.py --households 1000000 --repeat 2000
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import statistics
import sys
import time

import numpy

import inputs
import rent_loan as m
from openfisca_core.simulations import SimulationBuilder


def out(key: str, value) -> None:
    if isinstance(value, float):
        value = f"{value:.6g}" if abs(value) < 1e6 else f"{value:.1f}"
    print(f"openfisca {key}={value}", flush=True)


def rss_mb() -> float:
    """Current resident set size (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def percentile(values, q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def one_household(tbs, repeat: int, warmup: int) -> None:
    situation = m.situation(m.STANDARD_ANSWERS)
    builds, calcs, totals = [], [], []
    amount = eligible = None
    for i in range(warmup + repeat):
        t0 = time.perf_counter()
        sim = SimulationBuilder().build_from_entities(tbs, situation)
        t1 = time.perf_counter()
        amount = sim.calculate("loan_amount", m.PERIOD)
        eligible = sim.calculate("eligible", m.PERIOD)
        t2 = time.perf_counter()
        if i >= warmup:
            builds.append(t1 - t0)
            calcs.append(t2 - t1)
            totals.append(t2 - t0)
    assert bool(eligible[0]) and abs(float(amount[0]) - 1500.0) < 0.005, (eligible, amount)
    us = 1e6
    out("one_household_repeat", repeat)
    out("one_household_median_us", statistics.median(totals) * us)
    out("one_household_p90_us", percentile(totals, 0.90) * us)
    out("one_household_min_us", min(totals) * us)
    out("one_household_build_median_us", statistics.median(builds) * us)
    out("one_household_calculate_median_us", statistics.median(calcs) * us)
    out("one_household_eligible", bool(eligible[0]))
    out("one_household_loan_amount", f"{float(amount[0]):.2f}")


def batch(tbs, arrays: dict, errors, runs: int) -> None:
    n = len(arrays["monthly_rent"])
    input_mb = sum(a.nbytes for a in arrays.values()) / 1e6
    out(f"batch_{n}_input_mb", input_mb)
    out(f"batch_{n}_rss_before_mb", rss_mb())
    builds, calcs, amounts_s, eligibles_s = [], [], [], []
    amount = eligible = None
    for run in range(runs):
        amount = eligible = None
        gc.collect()
        t0 = time.perf_counter()
        sim = m.batch_simulation(tbs, arrays)
        t1 = time.perf_counter()
        amount = sim.calculate("loan_amount", m.PERIOD)
        t2 = time.perf_counter()
        eligible = sim.calculate("eligible", m.PERIOD)
        t3 = time.perf_counter()
        builds.append(t1 - t0)
        calcs.append(t3 - t1)
        amounts_s.append(t2 - t1)
        eligibles_s.append(t3 - t2)
        out(f"batch_{n}_run{run + 1}_rss_mb", rss_mb())
        del sim
    best = min(range(runs), key=lambda i: calcs[i])
    med = statistics.median
    out(f"batch_{n}_runs", runs)
    out(f"batch_{n}_build_s", med(builds))
    out(f"batch_{n}_s", med(calcs))
    out(f"batch_{n}_min_s", calcs[best])
    out(f"batch_{n}_loan_amount_s", med(amounts_s))
    out(f"batch_{n}_eligible_s", med(eligibles_s))
    out(f"batch_{n}_ns_per_household", med(calcs) / n * 1e9)
    # Results, to see they are sensible (and, with --applications, to set
    # beside guichet's totals: rows guichet rejects with an error are
    # counted apart, as check.py does).
    decided = numpy.ones(n, dtype=bool) if errors is None else errors == 0
    cents = numpy.round(amount.astype(numpy.float64) * 100).astype(numpy.int64)
    out(f"batch_{n}_eligible", int((eligible & decided).sum()))
    out(f"batch_{n}_not_eligible", int((~eligible & decided).sum()))
    if errors is not None:
        out(f"batch_{n}_guichet_errors", int((~decided).sum()))
    out(f"batch_{n}_total_amount", f"{int(cents[eligible & decided].sum()) / 100:.2f}")
    out("peak_rss_mb", peak_rss_mb())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=1_000_000, help="households in the vectorised run (default 1000000)")
    ap.add_argument("--repeat", type=int, default=2000, help="timed one-household evaluations (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="untimed one-household evaluations first (default 200)")
    ap.add_argument("--batch-runs", type=int, default=1, help="vectorised runs, each with a fresh simulation (default 1)")
    ap.add_argument("--seed", type=int, default=2020, help="numpy RNG seed of the synthetic households (default 2020)")
    ap.add_argument("--applications", help="JSON lines from `guichet program generate` instead of the numpy RNG "
                    "(the first --households rows)")
    ap.add_argument("--only", choices=("one", "batch"), help="run one measurement only")
    args = ap.parse_args()

    from importlib.metadata import version

    out("versions", f"openfisca_core={version('openfisca-core')},numpy={numpy.__version__},python={platform.python_version()}")
    t0 = time.perf_counter()
    tbs = m.build_tax_benefit_system()
    out("tax_benefit_system_load_s", time.perf_counter() - t0)
    out("rss_start_mb", rss_mb())

    if args.only != "batch" and args.repeat > 0:
        one_household(tbs, args.repeat, args.warmup)

    if args.only != "one" and args.households > 0:
        t0 = time.perf_counter()
        if args.applications:
            arrays, errors = inputs.load_jsonl(args.applications, limit=args.households)
            arrays.pop("submitted_on")  # the window is guichet's pre-check, not a rule (see README)
            source = f"guichet-jsonl:{args.applications}"
        else:
            arrays, errors = inputs.synthetic(args.households, args.seed), None
            source = f"numpy-seed-{args.seed}"
        out("batch_inputs", source)
        out("batch_inputs_prepare_s_untimed", time.perf_counter() - t0)
        batch(tbs, arrays, errors, args.batch_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
