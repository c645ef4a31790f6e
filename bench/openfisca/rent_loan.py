"""An OpenFisca model of the SHQ rent-loan program (spring 2020).

The same rules as programs/shq-pret-loyer-2020.toml, written the way an
OpenFisca country package writes them: input variables for the answers,
formula variables for the derived values, one formula per eligibility rule,
`eligible` and `loan_amount`, and the parameters in YAML files
(./parameters/, effective 2020-04-01). Everything is computed for the month
2020-05 (PERIOD).

One entity only: OpenFisca needs a "person" entity and nothing more (group
entities are optional), so the applicant's tenant household is the person
entity here, `household` / `households`. A richer system (persons grouped in
households) would only add work for OpenFisca: this is its cheapest shape.

Differences from the TOML program are listed in README.md; in short:
  * no "unanswered" state (OpenFisca inputs always have a value, their
    default if not set), so missing_answer / undetermined do not exist here;
  * the application window (opens/closes, error `outside_window` in guichet)
    is the separate variable `application_in_window`, not part of
    `eligible` (in guichet it is an error, not a failed rule);
  * money is OpenFisca's `float` (float32), not exact cents;
  * "no lease end" (an empty answer in guichet) is the sentinel date
    9999-12-31 (NO_LEASE_END), which is also the default of `lease_end`.
"""

from __future__ import annotations

import datetime
import os

import numpy

from openfisca_core.entities import build_entity
from openfisca_core.indexed_enums import Enum
from openfisca_core.periods import DateUnit
from openfisca_core.taxbenefitsystems import TaxBenefitSystem
from openfisca_core.variables import Variable

PERIOD = "2020-05"
HERE = os.path.dirname(os.path.abspath(__file__))
PARAMETERS_DIR = os.path.join(HERE, "parameters")

# "No lease end" (lease of indeterminate duration). guichet leaves the answer
# empty (`lease_end is none`); OpenFisca has no empty value, so such a lease
# ends on this far-future date, which passes every `lease_end >= date` test
# exactly as `lease_end is none` does in the TOML rules.
NO_LEASE_END = datetime.date(9999, 12, 31)

# Top-level `opens` / `closes` of the TOML (not parameters there either).
OPENS = numpy.datetime64("2020-04-22", "D")
CLOSES = numpy.datetime64("2020-07-15", "D")

Household = build_entity(
    key="household",
    plural="households",
    label="Tenant household applying for the rent loan",
    doc="The applicant; OpenFisca's person entity (the only entity).",
    is_person=True,
)


# ---------------------------------------------------------------------------
# Enums (option values of the TOML `choice` questions; member names are the
# TOML values, so situations use the same strings as guichet's answers)
# ---------------------------------------------------------------------------


class Province(Enum):
    """home.province: the two-letter Canadian codes guichet accepts."""

    AB = "Alberta"
    BC = "British Columbia"
    MB = "Manitoba"
    NB = "New Brunswick"
    NL = "Newfoundland and Labrador"
    NS = "Nova Scotia"
    NT = "Northwest Territories"
    NU = "Nunavut"
    ON = "Ontario"
    PE = "Prince Edward Island"
    QC = "Quebec"
    SK = "Saskatchewan"
    YT = "Yukon"


class IncomeSupport(Enum):
    cerb = "Canada Emergency Response Benefit (CERB / PCU)"
    ei = "Employment Insurance"
    none = "Neither of these benefits"


class HousingType(Enum):
    ordinary = "Rental housing with no help to pay the rent"
    hlm = "Low-rental housing (HLM)"
    rent_supplement = "Housing with a rent supplement"


class MonthsCovered(Enum):
    may = "The May 2020 rent"
    june = "The June 2020 rent"
    both = "The May and June 2020 rents"


class Portion(Enum):
    all = "All of it"
    part = "Only part of it"


# ---------------------------------------------------------------------------
# Inputs (the questions the rules use; the landlord's name, address, e-mail,
# bank details and the copy of the lease are not used by any rule or by the
# amount, so they are not modelled)
# ---------------------------------------------------------------------------


class province(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = Enum
    possible_values = Province
    default_value = Province.QC
    label = "Province of the rented home (home.province)"


class income_support(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = Enum
    possible_values = IncomeSupport
    default_value = IncomeSupport.cerb
    label = "Receives or is eligible for the CERB or EI because of COVID-19"


class housing_type(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = Enum
    possible_values = HousingType
    default_value = HousingType.ordinary
    label = "Type of housing"


class lease_start(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = datetime.date
    label = "Start date of the lease (period that includes May 2020)"


class lease_end(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = datetime.date
    default_value = NO_LEASE_END
    label = "End date of the lease; 9999-12-31 (NO_LEASE_END) = no end date"


class told_landlord(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Told the landlord first about the difficulty paying the rent"


class monthly_rent(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = float
    label = "Monthly rent ($)"


class months_covered(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = Enum
    possible_values = MonthsCovered
    default_value = MonthsCovered.may
    label = "Which rent the loan is for"


class portion(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = Enum
    possible_values = Portion
    default_value = Portion.all
    label = "Borrow all of the rent or only part of it"


class amount_requested(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = float
    label = "Amount the applicant wants to borrow ($), read only when portion == part"


class submitted_on(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = datetime.date
    default_value = datetime.date(2020, 5, 10)
    label = "Date the application was submitted (guichet's reference date)"


# ---------------------------------------------------------------------------
# Derived values ([derived.*] of the TOML)
# ---------------------------------------------------------------------------


class months_requested(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = int
    label = "Number of months of rent covered"

    def formula(household, period, parameters):
        # if months_covered == "both" then 2 else 1
        covered = household("months_covered", period)
        return numpy.where(covered == MonthsCovered.both, 2, 1)


class rent_for_months(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = float
    label = "Rent for the months covered"

    def formula(household, period, parameters):
        # monthly_rent * months_requested
        return household("monthly_rent", period) * household("months_requested", period)


class loan_requested(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = float
    label = "Amount requested, limited to the rent for the months covered"

    def formula(household, period, parameters):
        # if portion == "part" then min(amount_requested, rent_for_months)
        # else rent_for_months
        rent = household("rent_for_months", period)
        part = household("portion", period) == Portion.part
        return numpy.where(part, numpy.minimum(household("amount_requested", period), rent), rent)


# ---------------------------------------------------------------------------
# Eligibility rules ([rules.*] of the TOML, in the same order)
# ---------------------------------------------------------------------------


def _date(value: str) -> numpy.datetime64:
    """A date parameter (an ISO string in the YAML) as numpy.datetime64[D]."""
    return numpy.datetime64(value, "D")


class resides_in_quebec(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Living in Quebec (art. 3, 1°)"

    def formula(household, period, parameters):
        # home.province == "QC"
        return household("province", period) == Province.QC


class covid_income_support(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Receiving, or eligible for, the CERB or EI because of COVID-19 (art. 3, 2°)"

    def formula(household, period, parameters):
        # income_support in ["cerb", "ei"]
        support = household("income_support", period)
        return (support == IncomeSupport.cerb) | (support == IncomeSupport.ei)


class lease_in_force(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Lease in force on May 1, 2020 (art. 3, 3°)"

    def formula(household, period, parameters):
        # lease_start <= lease_in_force_date
        #   and (lease_end is none or lease_end >= lease_in_force_date)
        # "lease_end is none" is lease_end == NO_LEASE_END, which already
        # satisfies lease_end >= lease_in_force_date.
        day = _date(parameters(period).lease_in_force_date)
        return (household("lease_start", period) <= day) & (household("lease_end", period) >= day)


class lease_covers_june(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Lease still in force on June 1, 2020 if the loan covers the June rent (art. 3, 4°)"

    def formula(household, period, parameters):
        # months_covered == "may" or lease_end is none
        #   or lease_end >= june_rent_due
        due = _date(parameters(period).june_rent_due)
        may_only = household("months_covered", period) == MonthsCovered.may
        return may_only | (household("lease_end", period) >= due)


class landlord_informed_first(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Having told the landlord first (art. 3, 5°)"

    def formula(household, period, parameters):
        # told_landlord == true
        return household("told_landlord", period)


class not_social_housing(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Not living in HLM nor receiving a rent supplement (art. 4)"

    def formula(household, period, parameters):
        # housing_type == "ordinary"
        return household("housing_type", period) == HousingType.ordinary


RULES = (
    "resides_in_quebec",
    "covid_income_support",
    "lease_in_force",
    "lease_covers_june",
    "landlord_informed_first",
    "not_social_housing",
)


class eligible(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Eligible: every rule holds"

    def formula(household, period, parameters):
        result = household(RULES[0], period)
        for rule in RULES[1:]:
            result = result & household(rule, period)
        return result


# ---------------------------------------------------------------------------
# Amount ([amount] of the TOML) and the application window
# ---------------------------------------------------------------------------


class loan_amount(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = float
    label = "Loan amount (art. 5): min(loan_requested, loan_cap) when eligible, else 0"

    def formula(household, period, parameters):
        # [amount] value = min(loan_requested, loan_cap). guichet reports an
        # amount only for an eligible application (none otherwise, 0 in its
        # batch output), hence the `where`.
        cap = parameters(period).loan_cap
        amount = numpy.minimum(household("loan_requested", period), cap)
        return numpy.where(household("eligible", period), amount, 0)


class application_in_window(Variable):
    entity = Household
    definition_period = DateUnit.MONTH
    value_type = bool
    label = "Submitted between opens (2020-04-22) and closes (2020-07-15), inclusive"

    def formula(household, period, parameters):
        # Not a rule in guichet: outside the window, evaluation fails with
        # the error `outside_window`. Not computed by bench.py.
        day = household("submitted_on", period)
        return (day >= OPENS) & (day <= CLOSES)


VARIABLES = (
    province,
    income_support,
    housing_type,
    lease_start,
    lease_end,
    told_landlord,
    monthly_rent,
    months_covered,
    portion,
    amount_requested,
    submitted_on,
    months_requested,
    rent_for_months,
    loan_requested,
    resides_in_quebec,
    covid_income_support,
    lease_in_force,
    lease_covers_june,
    landlord_informed_first,
    not_social_housing,
    eligible,
    loan_amount,
    application_in_window,
)


def build_tax_benefit_system() -> TaxBenefitSystem:
    tbs = TaxBenefitSystem([Household])
    tbs.add_variables(*VARIABLES)
    tbs.load_parameters(PARAMETERS_DIR)
    return tbs


# ---------------------------------------------------------------------------
# guichet answers -> OpenFisca situation (what an OpenFisca web API client
# would POST to /calculate, minus the requested outputs)
# ---------------------------------------------------------------------------

# The eligible tenant of [test_defaults] in the TOML: 800 $ a month, May and
# June, whole rent -> 1 600 $ asked, capped at 1 500 $.
STANDARD_ANSWERS = {
    "income_support": "cerb",
    "home": {"line1": "4321, rue Saint-Denis, app. 3", "city": "Montréal", "province": "QC", "postal_code": "H2J 2L4"},
    "housing_type": "ordinary",
    "lease_start": "2019-07-01",
    "lease_end": "2020-06-30",
    "told_landlord": True,
    "monthly_rent": "800.00",
    "months_covered": "both",
    "portion": "all",
}


def money(value) -> float:
    """guichet money: "800.00", "800.00 $" or a number."""
    if isinstance(value, str):
        return float(value.replace("$", "").replace("\u00a0", "").replace(" ", ""))
    return float(value)


def iso(value) -> str:
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


def situation(answers: dict, submitted: str | None = None, period: str = PERIOD) -> dict:
    """One household, from guichet-style answers (questions not used by the
    rules are ignored; an absent lease_end means no end date)."""
    v: dict = {}
    if "home" in answers:
        v["province"] = answers["home"]["province"]
    for name in ("income_support", "housing_type", "months_covered", "portion"):
        if name in answers:
            v[name] = answers[name]
    for name in ("lease_start", "lease_end"):
        if name in answers:
            v[name] = iso(answers[name])
    if "told_landlord" in answers:
        v["told_landlord"] = bool(answers["told_landlord"])
    for name in ("monthly_rent", "amount_requested"):
        if name in answers:
            v[name] = money(answers[name])
    if submitted is not None:
        v["submitted_on"] = iso(submitted)
    return {"households": {"h1": {name: {period: value} for name, value in v.items()}}}


def batch_simulation(tbs: TaxBenefitSystem, arrays: dict, period: str = PERIOD):
    """One simulation of len(arrays[...]) households, inputs set from numpy
    arrays (see inputs.py), as a vectorised OpenFisca run is set up."""
    from openfisca_core.simulations import SimulationBuilder

    count = len(next(iter(arrays.values())))
    simulation = SimulationBuilder().build_default_simulation(tbs, count)
    for name, values in arrays.items():
        simulation.set_input(name, period, values)
    return simulation
