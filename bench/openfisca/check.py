"""Checks that the OpenFisca model says what the TOML program says.

1. Runs every [[tests]] of programs/shq-pret-loyer-2020.toml through the
   OpenFisca model: eligible, amount, and exactly which rules fail. Tests
   expecting an error: `outside_window` is checked with the OpenFisca
   variable `application_in_window`; `missing_answer` / `invalid_answer`
   only with inputs.precheck (plain Python: OpenFisca has no unanswered or
   out-of-bounds inputs).

2. With --guichet BIN (an already built guichet binary; this script never
   builds anything): `guichet program generate` writes COUNT applications
   (seed 2020), `guichet program simulate --json` evaluates them, and the
   OpenFisca batch on the same rows must give the same totals: eligible,
   not eligible, error, and the total amount to the cent.

    /var/tmp/ofenv/bin/python check.py
    /var/tmp/ofenv/bin/python check.py --guichet ../../target/release/guichet --count 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib

import numpy

import inputs
import rent_loan as m
from openfisca_core.simulations import SimulationBuilder


def toml_tests(tbs) -> int:
    with open(inputs.TOML_PATH, "rb") as f:
        program = tomllib.load(f)
    defaults = program["test_defaults"]
    questions = program["questions"]
    failures = 0
    for test in program["tests"]:
        answers = dict(defaults["answers"])
        answers.update(test.get("answers", {}))
        for name in test.get("unset", []):
            answers.pop(name, None)
        submitted = test.get("submitted_on", defaults["submitted_on"])
        expect = test["expect"]
        error = inputs.precheck(answers, submitted, questions)
        how = "openfisca"
        if "error" in expect:
            ok = error == expect["error"]
            if expect["error"] == "outside_window":
                sim = SimulationBuilder().build_from_entities(tbs, m.situation(answers, submitted))
                ok = ok and not bool(sim.calculate("application_in_window", m.PERIOD)[0])
            else:
                how = "precheck"
            got = f"error={error}"
        else:
            sim = SimulationBuilder().build_from_entities(tbs, m.situation(answers, submitted))
            eligible = bool(sim.calculate("eligible", m.PERIOD)[0])
            amount = float(sim.calculate("loan_amount", m.PERIOD)[0])
            failed = [r for r in m.RULES if not bool(sim.calculate(r, m.PERIOD)[0])]
            in_window = bool(sim.calculate("application_in_window", m.PERIOD)[0])
            ok = error is None and in_window and eligible == expect["eligible"]
            if "amount" in expect:
                ok = ok and abs(amount - m.money(expect["amount"])) < 0.005
            ok = ok and failed == expect.get("failed", [])
            got = f"eligible={eligible} amount={amount:.2f} failed={failed}"
        failures += not ok
        print(f"  {'ok  ' if ok else 'FAIL'}  [{how:9}] {test['name']}: {got}")
    total = len(program["tests"])
    print(f"toml tests: {total - failures} passed, {failures} failed (of {total})")
    return failures


def parity(tbs, guichet: str, count: int, seed: int, applications: str | None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        if applications is None:
            applications = os.path.join(tmp, "applications.jsonl")
            subprocess.run(
                [guichet, "program", "generate", inputs.TOML_PATH, "--count", str(count), "--seed", str(seed), "--out", applications],
                check=True,
            )
        out = subprocess.run(
            [guichet, "program", "simulate", inputs.TOML_PATH, "--baseline", inputs.TOML_PATH, "--applications", applications, "--json"],
            check=True,
            capture_output=True,
            text=True,
        )
        ref = json.loads(out.stdout)
        arrays, errors = inputs.load_jsonl(applications)
    sim = m.batch_simulation(tbs, arrays)
    amount = sim.calculate("loan_amount", m.PERIOD)
    eligible = sim.calculate("eligible", m.PERIOD)
    decided = errors == 0
    cents = numpy.round(amount.astype(numpy.float64) * 100).astype(numpy.int64)
    ours = {
        "eligible": int((decided & eligible).sum()),
        "not_eligible": int((decided & ~eligible).sum()),
        "undetermined": 0,
        "error": int((~decided).sum()),
        "cost": f"{int(cents[decided & eligible].sum()) / 100:.2f}",
    }
    theirs = dict(ref["baseline"]["totals"])
    theirs["error"] += ref.get("unreadable", 0)
    theirs["cost"] = f"{m.money(theirs['cost']):.2f}"
    print(f"parity on {ref['applications']} guichet applications (seed {seed}):")
    bad = 0
    for key in ("eligible", "not_eligible", "undetermined", "error", "cost"):
        same = str(ours[key]) == str(theirs[key])
        bad += not same
        print(f"  {'ok  ' if same else 'DIFF'}  {key:13} guichet={theirs[key]}  openfisca={ours[key]}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--guichet", help="path to a built guichet binary (enables the parity check)")
    ap.add_argument("--count", type=int, default=20000, help="applications to generate for the parity check")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--applications", help="use this JSON-lines file instead of generating one")
    args = ap.parse_args()
    tbs = m.build_tax_benefit_system()
    bad = toml_tests(tbs)
    if args.guichet:
        bad += parity(tbs, args.guichet, args.count, args.seed, args.applications)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
