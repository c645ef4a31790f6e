"""The peer for writing pain.001.001.03: python-sepaxml (PyPI `sepaxml`),
the same number of credit transfers, timed in-process. sepaxml writes the
SEPA flavour (IBAN/BIC, EUR): the same message type and schema, the
closest maintained open-source generator we found.

    python sepaxml_pain001.py N
"""
import datetime
import sys
import time

from sepaxml import SepaTransfer

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000


def iban(i):
    # A valid German IBAN for account number i (check digits computed).
    bban = "37040044" + f"{i:010d}"
    num = int("".join(str(int(c, 36)) for c in bban + "DE00"))
    return f"DE{98 - num % 97:02d}{bban}"


config = {
    "name": "Societe d'habitation du Quebec",
    "IBAN": "DE89370400440532013000",
    "BIC": "COBADEFFXXX",
    "batch": False,
    "currency": "EUR",
}
t = time.perf_counter()
sepa = SepaTransfer(config, schema="pain.001.001.03", clean=True)
for i in range(N):
    sepa.add_payment({
        "name": f"Menage {i}",
        "IBAN": iban(i),
        "BIC": "COBADEFFXXX",
        "amount": 100_000 + i % 400_000,
        "execution_date": datetime.date(2099, 1, 15),
        "description": "shq-menages-en-attente-2020",
    })
xml = sepa.export(validate=False)
elapsed = time.perf_counter() - t
print(f"sepaxml: {N} transfers, pain.001.001.03 written in {elapsed:.3f} s ({len(xml)} bytes)")
