"""SQLite's own floor for a payment batch of N, driven from C (Python's
sqlite3 module) on guichet's schema (the migrations, WAL,
synchronous=FULL): the ready dossiers read (the columns guichet reads,
snapshots of about 1.1 KB, each applicant's account joined for its sealed
contact of about 120 bytes), then, in one transaction, N payment rows, N
dossier events and N dossier rows updated (state, version, last link), and
the commit. The values are made before the clock starts; nothing is
sealed, serialized or checked. What guichet adds above this is its own
work and sqlx's.

    python3 bench/payments/sqlite_floor.py [N] [--snapshots-in-rows] [--files] [--batch-document]

The snapshots are in a table of their own, as guichet keeps them since
migration 0010 (what the dossier UPDATE rewrites is a small row);
--snapshots-in-rows puts them back in the dossier rows, the layout before.
--files also writes the two bank files in the transaction (43 and 24 MB at
100,000 payments, as guichet's), which guichet does and the plain floor
leaves out.
--batch-document is the floor of guichet's model since migration 11 (the
default is the model before it, one event per dossier): the queue is read
from the payment lines (about 300 sealed bytes per dossier, the dossier's
plain columns and the applicant's contact), not from the snapshots; the
batch holds its payees in sealed slices of 1,000 and names its dossiers in
its one event; each payment is a lean index row; no dossier event is
written and the dossiers leave the queue by one set-based UPDATE from the
batch's rows (version bumped, version checked); the two files are stored
compressed (zlib level 1 of files made like guichet's, as guichet keeps
them).
"""

import os
import sqlite3
import sys
import tempfile
import time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(args[0]) if args else 100_000
IN_ROWS = "--snapshots-in-rows" in sys.argv
FILES = "--files" in sys.argv
DOCUMENT = "--batch-document" in sys.argv
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MIGRATIONS = os.path.join(ROOT, "crates", "guichet-store", "migrations", "sqlite")

with tempfile.TemporaryDirectory() as d:
    c = sqlite3.connect(os.path.join(d, "floor.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("PRAGMA cache_size=-8192")
    for name in sorted(os.listdir(MIGRATIONS)):
        c.executescript(open(os.path.join(MIGRATIONS, name)).read())
    if IN_ROWS:
        c.execute("ALTER TABLE dossiers ADD COLUMN snapshot BLOB")
    ids = [f"d_{i:032x}" for i in range(N)]
    c.execute("BEGIN")
    if IN_ROWS:
        c.executemany(
            "INSERT INTO dossiers (id, program, program_version, applicant, state, version, last_link, created_at, "
            "submitted_at, updated_at, flags, snapshot) VALUES (?, 'p', 'v1', ?, 'approved', 5, ?, 1, 3, 4, '[]', ?)",
            ((i, "u" + i, os.urandom(32), os.urandom(1100)) for i in ids),
        )
    else:
        c.executemany(
            "INSERT INTO dossiers (id, program, program_version, applicant, state, version, last_link, created_at, "
            "submitted_at, updated_at, flags) VALUES (?, 'p', 'v1', ?, 'approved', 5, ?, 1, 3, 4, '[]')",
            ((i, "u" + i, os.urandom(32)) for i in ids),
        )
        c.executemany("INSERT INTO dossier_snapshots (id, body) VALUES (?, ?)", ((i, os.urandom(1100)) for i in ids))
    c.executemany(
        "INSERT INTO users (id, email, name, password_hash, roles, language, verified, active, created_at, contact) "
        "VALUES (?, ?, '', 'h', '[]', 'fr', 1, 1, 1, ?)",
        (("u" + i, os.urandom(32).hex(), os.urandom(120)) for i in ids),
    )
    c.execute("COMMIT")
    c.execute("INSERT INTO payment_batches (id, direction, state, currency, count, total, file_number, created_local, "
              "execution_date, created_by, created_at) VALUES ('B1', 'credit', 'created', 'CAD', 0, 0, 1, '', '', 'u', 9)")
    payments = [(f"P{os.urandom(9).hex().upper()}", n, i, os.urandom(250)) for n, i in enumerate(ids)]
    events = [(f"dossier:{i}", os.urandom(200), os.urandom(32)) for i in ids]
    updates = [(os.urandom(32), i) for i in ids]

    files = [os.urandom(N * 433), os.urandom(N * 244)] if FILES else []
    if FILES and DOCUMENT:
        import zlib
        xml = "".join(
            f"<CdtTrfTxInf><PmtId><EndToEndId>P{i:018d}</EndToEndId></PmtId><Amt><InstdAmt Ccy=\"CAD\">"
            f"{1000 + i % 4000}.{i % 100:02d}</InstdAmt></Amt><CdtrAgt><FinInstnId><ClrSysMmbId><ClrSysId>"
            f"<Cd>CACPA</Cd></ClrSysId><MmbId>0{i % 900 + 100:03d}{10000 + i % 90000:05d}</MmbId></ClrSysMmbId>"
            f"</FinInstnId></CdtrAgt><Cdtr><Nm>Menage {i}</Nm></Cdtr><CdtrAcct><Id><Othr><Id>{1000000 + i}</Id>"
            f"</Othr></Id></CdtrAcct><RmtInf><Ustrd>programme d_{i:032x}</Ustrd></RmtInf></CdtTrfTxInf>\n"
            for i in range(N)
        ).encode()
        fixed = "".join(
            f"C{i:09d}450{1000 + i:010d}{'':6}0{i % 900 + 100:03d}{10000 + i % 90000:05d}{1000000 + i:<12}"
            f"{'':25}Menage {i:<23}{'':200}".ljust(240) for i in range(N)
        ).encode()
        files = [zlib.compress(xml, 1), zlib.compress(fixed, 1)]
        print(f"  (files as stored: {len(xml) // 1_000_000} and {len(fixed) // 1_000_000} MB compressed to "
              f"{len(files[0]) // 1_000_000} and {len(files[1]) // 1_000_000} MB)")

    if DOCUMENT:
        # The lines the service wrote with each decision.
        c.execute("BEGIN")
        c.executemany("INSERT INTO payment_lines (dossier, version, body) VALUES (?, 5, ?)",
                      ((i, os.urandom(300)) for i in ids))
        c.execute("COMMIT")
    t0 = time.perf_counter()
    if DOCUMENT:
        sql = "SELECT d.id, d.program, d.applicant, d.state, d.version, d.updated_at, d.flags, l.body, u.contact, " \
              "u.language FROM dossiers d LEFT JOIN payment_lines l ON l.dossier = d.id AND l.version = d.version " \
              "LEFT JOIN users u ON u.id = d.applicant " \
              "WHERE d.state IN ('approved', 'agreement_signed', 'payment_returned')"
    elif not IN_ROWS:
        sql = "SELECT d.id, d.program_version, d.version, d.updated_at, d.flags, s.body, d.snapshot_version, " \
              "d.applicant, u.contact, u.language FROM dossiers d JOIN dossier_snapshots s ON s.id = d.id " \
              "LEFT JOIN users u ON u.id = d.applicant " \
              "WHERE d.state IN ('approved', 'agreement_signed', 'payment_returned')"
    else:
        sql = "SELECT d.id, d.program_version, d.version, d.updated_at, d.flags, d.snapshot, d.snapshot_version, " \
              "d.applicant, u.contact, u.language FROM dossiers d LEFT JOIN users u ON u.id = d.applicant " \
              "WHERE d.state IN ('approved', 'agreement_signed', 'payment_returned')"
    rows = c.execute(sql).fetchall()
    t1 = time.perf_counter()
    c.execute("BEGIN")
    for n, body in enumerate(files):
        c.execute("INSERT INTO payment_files (batch, format, body) VALUES ('B1', ?, ?)", (f"f{n}", body))
    if DOCUMENT:
        # The payees in sealed slices of 1,000 (about 150 bytes each), the
        # batch's one event naming every payment's dossier and version.
        c.executemany("INSERT INTO batch_payees (batch, slice, body) VALUES ('B1', ?, ?)",
                      ((k, os.urandom(150 * 1000)) for k in range(N // 1000 + 1)))
        c.execute("INSERT INTO events (aggregate, idx, kind, actor, at, body, link) "
                  "VALUES ('batch:B1', 0, 'batch_created', 'u_f', 9, ?, ?)", (os.urandom(N * 65), os.urandom(32)))
        c.executemany(
            "INSERT INTO payments (reference, batch, seq, dossier, amount, currency, state, details, updated_at, "
            "version) VALUES (?, 'B1', ?, ?, 100000, 'CAD', 'scheduled', x'', 9, 5)",
            [(r, n, i) for (r, n, i, _) in payments],
        )
    else:
        c.executemany(
            "INSERT INTO payments (reference, batch, seq, dossier, amount, currency, state, details, updated_at) "
            "VALUES (?, 'B1', ?, ?, 100000, 'CAD', 'scheduled', ?, 9)",
            payments,
        )
    t2 = time.perf_counter()
    if not DOCUMENT:
        c.executemany(
            "INSERT INTO events (aggregate, idx, kind, actor, at, body, link) VALUES (?, 5, 'payment_scheduled', 'u_f', 9, ?, ?)",
            events,
        )
    t3 = time.perf_counter()
    if DOCUMENT:
        done = c.execute("UPDATE dossiers SET state = 'payment_scheduled', version = p.version + 1, updated_at = 9, "
                         "snapshot_version = COALESCE(dossiers.snapshot_version, p.version) FROM payments p "
                         "WHERE p.batch = 'B1' AND p.version IS NOT NULL AND p.dossier = dossiers.id "
                         "AND dossiers.version = p.version").rowcount
        assert done == N
    else:
        c.executemany(
            "UPDATE dossiers SET version = 6, last_link = ?, state = 'payment_scheduled', updated_at = 9, "
            "snapshot_version = COALESCE(snapshot_version, 5) WHERE id = ? AND version = 5",
            updates,
        )
    t4 = time.perf_counter()
    c.execute("COMMIT")
    t5 = time.perf_counter()
    assert len(rows) == N
    model = "batch document, guichet's since migration 11" if DOCUMENT else "an event per dossier, before migration 11"
    where = "snapshots in the dossier rows, as before migration 0010" if IN_ROWS else "snapshots apart, guichet's layout"
    print(f"SQLite floor ({model}; {where}; {'with' if FILES else 'without'} the files), {N} payments:")
    print(f"  queue read {t1 - t0:.3f} s; {'files and ' if FILES else ''}payments {t2 - t1:.3f} s, events {t3 - t2:.3f} s, "
          f"dossier rows {t4 - t3:.3f} s, commit {t5 - t4:.3f} s; total {t5 - t0:.3f} s")
