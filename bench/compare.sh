#!/usr/bin/env bash
# One run, one machine: guichet's rules engine against OpenFisca 46 on the
# same rent-loan rules and the same 1,000,000 generated applications.
#
#   bash bench/compare.sh            # needs OpenFisca: see bench/openfisca/README.md
#
# Prints guichet's criterion figures, `program simulate` end to end, and
# OpenFisca's two measurements, then nothing else: read the ratios off.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${OPENFISCA_PYTHON:-/var/tmp/ofenv/bin/python}
DATA=${DATA:-/var/tmp/guichet-bench}
mkdir -p "$DATA"

cargo build --release -q -p guichet
G=target/release/guichet
RENT=programs/shq-pret-loyer-2020.toml
[ -s "$DATA/rent-loan-1m.jsonl" ] || $G program generate $RENT --count 1000000 --seed 2020 --out "$DATA/rent-loan-1m.jsonl"
sed 's/values = { 2020-04-01 = "1500.00 \$" }/values = { 2020-04-01 = "2000.00 $" }/' $RENT > "$DATA/cap-2000.toml"

echo "== machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true

echo "== guichet: criterion (load, one application, 1M in memory)"
cargo bench -q -p guichet-rules --bench evaluate 2>&1 | grep -E '^[a-z].*|time:|MB of columns' | grep -v -E '^(Benchmarking|Found|Warning)'

echo "== guichet: program simulate, 1,000,000 lines, end to end (3 runs)"
ls -l "$DATA/rent-loan-1m.jsonl" | awk '{print $5 " bytes"}'
for i in 1 2 3; do
  /usr/bin/time -f "simulate wall=%es user=%Us maxrss=%MKB" $G program simulate "$DATA/cap-2000.toml" --baseline $RENT --applications "$DATA/rent-loan-1m.jsonl" > /dev/null
done

echo "== OpenFisca: one household per simulation, and 1,000,000 households vectorised (same rows)"
(cd bench/openfisca && $PY bench.py --repeat 2000 --households 1000000 --applications "$DATA/rent-loan-1m.jsonl")
