"""pyHanko on the inputs guichet's envelope benchmark wrote: the same
signature work as completing a two-signer envelope, on the same loan
agreement, keys and CA: two PAdES B-T signatures (in-process timestamp
authority: pyHanko's DummyTimeStamper), then validation data and a
document timestamp on the last one (use_pades_lta), revocation from the
given CRLs (no fetching). Prints `pyhanko key=value`.

    /var/tmp/pyhanko/bin/python bench/pades/pyhanko_envelope.py /var/tmp/guichet-bench/envelope 30
"""
import io
import logging
import statistics
import sys
import time

from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko_certvalidator import ValidationContext

# "fetching is not allowed" is said once per signature: the CRLs are given.
logging.disable(logging.WARNING)
d = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/guichet-bench/envelope"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
pdf = open(f"{d}/in.pdf", "rb").read()
issuing = load_cert_from_pemder(f"{d}/chain.pem")
root = load_cert_from_pemder(f"{d}/root.pem")
signer = signers.SimpleSigner.load(f"{d}/key.pem", f"{d}/cert.pem", ca_chain_files=(f"{d}/chain.pem",), key_passphrase=None)
tsa = DummyTimeStamper(
    tsa_cert=load_cert_from_pemder(f"{d}/tsa.pem"),
    tsa_key=load_private_key_from_pemder(f"{d}/tsa.key", passphrase=None),
    certs_to_embed=[issuing],
)
crls = [open(f"{d}/issuing.crl", "rb").read(), open(f"{d}/root.crl", "rb").read()]


def envelope():
    vc = ValidationContext(trust_roots=[root], crls=crls, allow_fetching=False)
    first = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)),
        signers.PdfSignatureMetadata(field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES),
        signer=signer,
        timestamper=tsa,
    )
    return signers.sign_pdf(
        IncrementalPdfFileWriter(first),
        signers.PdfSignatureMetadata(
            field_name="Signature2",
            subfilter=fields.SigSeedSubFilter.PADES,
            embed_validation_info=True,
            use_pades_lta=True,
            validation_context=vc,
        ),
        signer=signer,
        timestamper=tsa,
    )


for _ in range(3):
    envelope()
times = []
for _ in range(n):
    t = time.perf_counter()
    envelope()
    times.append(time.perf_counter() - t)
print(f"pyhanko two_bt_signatures_dss_doc_timestamp_median_ms={statistics.median(times) * 1e3:.2f}")
