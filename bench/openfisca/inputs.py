"""Input columns for a batch of households, two sources:

* `synthetic(n, seed)`: numpy RNG (seed 2020 by default), realistic
  distributions, about two thirds eligible;
* `load_jsonl(path)`: the applications `guichet program generate` writes
  (one JSON object a line: {"id", "submitted_on", "answers"}), so that
  OpenFisca and guichet can be timed on exactly the same rows and their
  totals compared (check.py).

Both return a dict {variable name: numpy array} ready for
`Simulation.set_input` (enums as int16 indices in the Enum's order, dates as
datetime64[D], money as float32).

`load_jsonl` also returns, per row, the guichet error OpenFisca cannot
express (see `precheck`): outside_window, missing_answer, invalid_answer.
"""

from __future__ import annotations

import json
import os
import re
import tomllib

import numpy

import rent_loan as m

TOML_PATH = os.path.normpath(os.path.join(m.HERE, "..", "..", "programs", "shq-pret-loyer-2020.toml"))

ENUMS = {
    "province": m.Province,
    "income_support": m.IncomeSupport,
    "housing_type": m.HousingType,
    "months_covered": m.MonthsCovered,
    "portion": m.Portion,
}
DATES = ("lease_start", "lease_end", "submitted_on")
NO_END = numpy.datetime64(m.NO_LEASE_END, "D")


def _index(enum) -> dict:
    return {member.name: i for i, member in enumerate(enum)}


# ---------------------------------------------------------------------------
# Synthetic households (numpy RNG)
# ---------------------------------------------------------------------------


def _days(rng, n, first: str, last: str):
    lo = numpy.datetime64(first, "D")
    hi = numpy.datetime64(last, "D")
    return lo + rng.integers(0, (hi - lo).astype(int) + 1, n).astype("timedelta64[D]")


def synthetic(n: int, seed: int = 2020) -> dict:
    """n households. Shares (approximate): 95 % in Quebec (3 % Ontario,
    mostly Gatineau/Ottawa), 92 % CERB or EI, 90 % ordinary housing, 75 %
    of leases starting July 1, 2019 (the usual Quebec lease), 5 % starting
    after May 1, 2020, 65 % ending June 30, 2020, 25 % with no end date,
    92 % told the landlord, rents log-normal around 800 $, 55 % ask for May
    and June, 25 % borrow part of the rent. About 64 % are eligible."""
    rng = numpy.random.default_rng(seed)
    p = _index(m.Province)
    prov_p = numpy.full(len(p), 0.0015)
    prov_p[p["QC"]] = 0.95
    prov_p[p["ON"]] = 0.03
    prov_p[p["NB"]] = 0.005
    prov_p /= prov_p.sum()

    def choice(weights):
        return rng.choice(len(weights), n, p=weights).astype(numpy.int16)

    # Lease start: the period including May 2020.
    kind = rng.random(n)
    start = numpy.where(
        kind < 0.75,
        numpy.datetime64("2019-07-01", "D"),
        numpy.where(kind < 0.95, _days(rng, n, "2018-05-02", "2020-05-01"), _days(rng, n, "2020-05-02", "2020-07-01")),
    )
    kind = rng.random(n)
    end = numpy.where(
        kind < 0.65,
        numpy.datetime64("2020-06-30", "D"),
        numpy.where(kind < 0.90, NO_END, _days(rng, n, "2020-03-01", "2021-06-30")),
    )
    rent = numpy.clip(numpy.round(rng.lognormal(numpy.log(800.0), 0.35, n)), 1.0, 10000.0)
    months = choice([0.30, 0.15, 0.55])  # may, june, both
    portion = choice([0.75, 0.25])  # all, part
    rent_for_months = rent * numpy.where(months == _index(m.MonthsCovered)["both"], 2, 1)
    asked = numpy.maximum(numpy.round(rent_for_months * rng.uniform(0.2, 1.1, n), -1), 1.0)
    requested = numpy.where(portion == _index(m.Portion)["part"], asked, 0.0)  # 0: not asked
    return {
        "province": choice(prov_p),
        "income_support": choice([0.72, 0.20, 0.08]),  # cerb, ei, none
        "housing_type": choice([0.90, 0.06, 0.04]),  # ordinary, hlm, rent_supplement
        "lease_start": start.astype("datetime64[D]"),
        "lease_end": end.astype("datetime64[D]"),
        "told_landlord": rng.random(n) < 0.92,
        "monthly_rent": rent.astype(numpy.float32),
        "months_covered": months,
        "portion": portion,
        "amount_requested": requested.astype(numpy.float32),
    }


# ---------------------------------------------------------------------------
# guichet's own applications (JSON lines)
# ---------------------------------------------------------------------------


def _questions() -> dict:
    with open(TOML_PATH, "rb") as f:
        return tomllib.load(f)["questions"]


def _money_cents(value) -> int:
    return round(m.money(value) * 100)


def precheck(answers: dict, submitted, questions: dict | None = None) -> str | None:
    """The guichet evaluation error for one application, or None: what
    guichet checks before the rules and OpenFisca cannot (it has no
    "unanswered" state and no answer bounds). Mirrors the TOML: the
    application window, required questions (`optional`, `ask_if` of the
    form `name == "value"`), money bounds, choice options, provinces."""
    questions = questions or _questions()
    day = numpy.datetime64(m.iso(submitted), "D")
    if not (m.OPENS <= day <= m.CLOSES):
        return "outside_window"
    for name, q in questions.items():
        cond = q.get("ask_if")
        if cond is not None:
            found = re.fullmatch(r'\s*(\w+)\s*==\s*"([^"]*)"\s*', cond)
            if found is None:
                raise ValueError(f"ask_if not understood: {cond!r}")
            if answers.get(found.group(1)) != found.group(2):
                continue
        if name not in answers:
            if not q.get("optional", False):
                return "missing_answer"
            continue
        value = answers[name]
        kind = q["type"]
        if kind == "money":
            cents = _money_cents(value)
            if "min" in q and cents < _money_cents(q["min"]):
                return "invalid_answer"
            if "max" in q and cents > _money_cents(q["max"]):
                return "invalid_answer"
        elif kind == "choice" and value not in {o["value"] for o in q["options"]}:
            return "invalid_answer"
        elif kind == "yes_no" and not isinstance(value, bool):
            return "invalid_answer"
        elif kind == "address" and value.get("province") not in m.Province.__members__:
            return "invalid_answer"
    return None


ERRORS = (None, "outside_window", "missing_answer", "invalid_answer")


def load_jsonl(path: str, limit: int | None = None) -> tuple[dict, numpy.ndarray]:
    """Columns for the OpenFisca model, plus guichet's error per row as an
    int8 index into ERRORS (0: no error, the rules decide). Rows go straight
    into preallocated numpy arrays, so that loading a million applications
    does not inflate the peak memory bench.py reports."""
    questions = _questions()
    idx = {name: _index(enum) for name, enum in ENUMS.items()}
    with open(path, "rb") as f:
        n = sum(1 for line in f if line.strip())
    if limit is not None:
        n = min(n, limit)
    arrays = {name: numpy.zeros(n, dtype=numpy.int16) for name in ENUMS}
    for name in DATES:
        arrays[name] = numpy.zeros(n, dtype="datetime64[D]")
    arrays["told_landlord"] = numpy.zeros(n, dtype=bool)
    arrays["monthly_rent"] = numpy.zeros(n, dtype=numpy.float32)
    arrays["amount_requested"] = numpy.zeros(n, dtype=numpy.float32)
    errors = numpy.zeros(n, dtype=numpy.int8)
    code = {e: i for i, e in enumerate(ERRORS)}
    qc = idx["province"]["QC"]
    no_end = m.NO_LEASE_END.isoformat()
    i = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if i >= n:
                break
            if not line.strip():
                continue
            app = json.loads(line)
            a = app.get("answers", {})
            errors[i] = code[precheck(a, app["submitted_on"], questions)]
            # An absent answer takes the variable's default, as in OpenFisca
            # (such rows are guichet errors anyway), except lease_end (absent
            # = no end date) and amount_requested (not asked unless "part").
            arrays["province"][i] = idx["province"].get((a.get("home") or {}).get("province"), qc)
            for name in ("income_support", "housing_type", "months_covered", "portion"):
                arrays[name][i] = idx[name].get(a.get(name), 0)
            arrays["lease_start"][i] = a.get("lease_start", "1970-01-01")
            arrays["lease_end"][i] = a.get("lease_end", no_end)
            arrays["submitted_on"][i] = app["submitted_on"]
            arrays["told_landlord"][i] = bool(a.get("told_landlord", False))
            arrays["monthly_rent"][i] = m.money(a.get("monthly_rent", 0))
            arrays["amount_requested"][i] = m.money(a.get("amount_requested", 0))
            i += 1
    return arrays, errors
