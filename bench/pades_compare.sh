#!/usr/bin/env bash
# One run, one machine: guichet's PAdES signing and validation against
# pyHanko (same PDF, same key), pdfsig (as a process, as it is used), and
# `openssl speed` (the cost of the cryptography alone).
#
#   bash bench/pades_compare.sh        # pyHanko: see .ci/run for the install
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYHANKO_PYTHON:-/var/tmp/pyhanko/bin/python}
export GUICHET_BENCH_DIR=${GUICHET_BENCH_DIR:-/var/tmp/guichet-bench/pades}

echo "== machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true

echo "== guichet (criterion; writes the inputs to $GUICHET_BENCH_DIR)"
cargo bench -q -p guichet-pades --bench pades 2>&1 | grep -E '^[a-z].*|time:|KB PDF' | grep -v -E '^(Benchmarking|Found|Warning)'

echo "== pyHanko (Python API, same inputs)"
$PY bench/pades/pyhanko_bench.py "$GUICHET_BENCH_DIR" 200

echo "== pdfsig (one process per validation, 50 runs)"
d=$(mktemp -d)
certutil -N -d "sql:$d" --empty-password
certutil -A -d "sql:$d" -n root -t CT,C,C -i "$GUICHET_BENCH_DIR/root.pem"
pdfsig -nssdir "sql:$d" "$GUICHET_BENCH_DIR/signed.pdf" | grep -E "Signature Validation|Certificate Validation"
python3 - "$d" "$GUICHET_BENCH_DIR/signed.pdf" <<'PY'
import statistics, subprocess, sys, time
t = []
for _ in range(50):
    s = time.perf_counter()
    subprocess.run(["pdfsig", "-nssdir", "sql:" + sys.argv[1], sys.argv[2]], capture_output=True, check=True)
    t.append(time.perf_counter() - s)
print(f"pdfsig validate_median_ms={statistics.median(t) * 1e3:.3f}")
PY
rm -rf "$d"

echo "== openssl speed (the cryptography alone, one core)"
openssl speed -seconds 2 ecdsap256 2>/dev/null | tail -2
openssl speed -seconds 2 -bytes 102400 sha256 2>/dev/null | tail -2
