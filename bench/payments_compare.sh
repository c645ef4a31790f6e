#!/usr/bin/env bash
# One run, one machine: a payment batch of N approved grants built, approved
# and written as both bank files in the service's use cases (guichet), the
# files alone (guichet-pay), the same number of transfers written as
# pain.001.001.03 by python-sepaxml, and M emails delivered to a loopback
# SMTP server by guichet and by Python's smtplib on one connection, and
# SQLite's own floor for the batch's reads and writes (driven from C by
# Python's sqlite3 on the same schema, nothing sealed or checked), for
# guichet's model (the batch document, ARCHITECTURE.md) and the models
# before it.
#
#   bash bench/payments_compare.sh [N] [M]      # defaults 100000 10000
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/guichet-target}"
N=${1:-100000}
M=${2:-10000}
VENV=${SEPAXML_VENV:-/var/tmp/sepaxml}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'sepaxml==2.7.0'
fi
echo "== machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true
echo "== guichet (release, SQLite)"
cargo bench -q -p guichet-app --bench payments -- "$N" "$M"
echo "== SQLite's floor for the same batch, guichet's model (Python's sqlite3, guichet's schema)"
python3 bench/payments/sqlite_floor.py "$N" --files --batch-document
echo "== SQLite's floor for the models before (an event per dossier; with snapshots in the rows)"
python3 bench/payments/sqlite_floor.py "$N" --files
python3 bench/payments/sqlite_floor.py "$N" --files --snapshots-in-rows
echo "== python-sepaxml (same N transfers)"
"$VENV/bin/python" bench/payments/sepaxml_pain001.py "$N"
echo "== Python smtplib, one connection, same kind of sink"
python3 -W ignore bench/payments/smtplib_one_connection.py "$M"
