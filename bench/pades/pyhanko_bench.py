"""pyHanko on the inputs guichet's pades benchmark wrote: sign the same
100 KB PDF with the same key (PAdES B-B, ECDSA P-256) and validate the PDF
guichet signed, through pyHanko's Python API. Prints `pyhanko key=value`.

    /var/tmp/pyhanko/bin/python bench/pades/pyhanko_bench.py /var/tmp/guichet-bench/pades
"""
import io
import statistics
import sys
import time

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

d = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/guichet-bench/pades"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
pdf = open(f"{d}/in.pdf", "rb").read()
signed = open(f"{d}/signed.pdf", "rb").read()
signer = signers.SimpleSigner.load(f"{d}/key.pem", f"{d}/cert.pem", ca_chain_files=(f"{d}/chain.pem",), key_passphrase=None)
meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES)


def sign_once():
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    return signers.sign_pdf(w, meta, signer=signer)


root = load_cert_from_pemder(f"{d}/root.pem")


def validate_once():
    r = PdfFileReader(io.BytesIO(signed))
    vc = ValidationContext(trust_roots=[root])
    st = validate_pdf_signature(r.embedded_signatures[0], vc)
    assert st.bottom_line, st
    return st


for f, name in ((sign_once, "sign"), (validate_once, "validate")):
    for _ in range(10):
        f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    print(f"pyhanko {name}_median_ms={statistics.median(times) * 1e3:.3f}")
    print(f"pyhanko {name}_per_s_one_core={1 / statistics.median(times):.1f}")
