#!/usr/bin/env bash
# One run, one machine: completing a two-signer loan agreement in the
# service's use cases (guichet), the same signature work in guichet-pades
# alone, and in pyHanko on the same files.
#
#   bash bench/envelope_compare.sh [ROUNDS]     # pyHanko: see .ci/run for the install
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-30}
PY=${PYHANKO_PYTHON:-/var/tmp/pyhanko/bin/python}
export GUICHET_BENCH_DIR=${GUICHET_BENCH_DIR:-/var/tmp/guichet-bench/envelope}
echo "== machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true
echo "== guichet (release)"
cargo bench -q -p guichet-app --bench envelope -- "$ROUNDS"
echo "== pyHanko (Python API, same agreement, keys and CA)"
$PY bench/pades/pyhanko_envelope.py "$GUICHET_BENCH_DIR" "$ROUNDS"
