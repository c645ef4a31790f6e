"""The loopback SMTP sink's own limit: Python's smtplib sending M small
messages over one connection to the same kind of sink guichet's
benchmark uses (Python's smtpd, discarding).

    python smtplib_one_connection.py M
"""
import asyncore  # noqa: F401 (deprecated, present in 3.11)
import smtpd
import socket
import sys
import threading
import time
import warnings

warnings.filterwarnings("ignore")
M = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000


class Sink(smtpd.SMTPServer):
    def process_message(self, *a, **k):
        pass


s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
Sink(("127.0.0.1", port), None)
threading.Thread(target=asyncore.loop, daemon=True).start()
time.sleep(0.3)
import smtplib  # noqa: E402

c = smtplib.SMTP("127.0.0.1", port)
body = "Subject: Paiement envoye\r\n\r\nBonjour,\r\n\r\nUn paiement de 1 500,00 $ a ete transmis.\r\n"
t = time.perf_counter()
for i in range(M):
    c.sendmail("no-reply@example.org", [f"p{i}@example.org"], body)
elapsed = time.perf_counter() - t
c.quit()
print(f"smtplib, one connection: {M} messages in {elapsed:.3f} s ({M / elapsed:.0f}/s)")
