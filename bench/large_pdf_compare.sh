#!/usr/bin/env bash
# One run, one machine: signing a 209 MB PDF of scanned pages (PAdES B-B,
# ECDSA P-256, same key and certificate) with `guichet sign` and with
# pyHanko's CLI; wall time and peak resident memory (GNU time's maximum
# RSS).
#
#   bash bench/large_pdf_compare.sh [PAGES]      # 100 pages: 209 MB
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/guichet-target}"
PYHANKO=${PYHANKO:-/var/tmp/pyhanko/bin/pyhanko}
PAGES=${1:-100}
cargo build -q --release -p guichet
G="$CARGO_TARGET_DIR/release/guichet"
d=$(mktemp -d /var/tmp/guichet-large.XXXXXX)
trap 'rm -rf "$d"' EXIT
cd "$d"
echo "== machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true
python3 "$OLDPWD/bench/pades/scanned_pdf.py" big.pdf "$PAGES"
echo "input: $(stat -c %s big.pdf) bytes"
"$G" ca init --dir ca --organization "Bench" >/dev/null
"$G" ca issue --dir ca --name "Alice Tremblay" --email alice@example.org --out alice >/dev/null
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o t.txt "$@" >/dev/null
  read -r secs kb < t.txt
  echo "$name: ${secs} s, peak RSS $((kb / 1024)) MB"
}
sync
measure "guichet sign (B-B)" "$G" sign big.pdf g.pdf --key alice.key --cert alice.pem --chain alice-chain.pem
measure "pyHanko sign addsig (B-B)" "$PYHANKO" sign addsig --field Sig1 --use-pades pemder --no-pass \
  --key alice.key --cert alice.pem --chain alice-chain.pem big.pdf p.pdf
echo "== both outputs validated by guichet verify"
"$G" verify g.pdf --trust ca/root.pem | head -2
"$G" verify p.pdf --trust ca/root.pem | head -2
