#!/usr/bin/env bash
# Durable submissions over HTTP (evaluate + store + events, one POST each),
# measured with wrk against `guichet serve` (release), on SQLite and on
# PostgreSQL, beside the physical limit: the rate of single-row durable
# commits the same database reaches without batching (SQLite WAL with
# synchronous=FULL from Python's sqlite3; PostgreSQL from pgbench at the
# same concurrency).
#
#   bash bench/serve_load.sh [seconds] [connections]
#
# Needs: wrk, curl, python3, pgbench and a PostgreSQL on 127.0.0.1:5432
# (GUICHET_BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-64}
PG=${GUICHET_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/guichet-target}
cargo build --release -q -p guichet
BIN=$CARGO_TARGET_DIR/release/guichet
WORK=$(mktemp -d /tmp/guichet-bench.XXXXXX)
PORT=18181
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

cat > "$WORK/post.lua" <<'LUA'
local n = 0
local tid = math.random(1, 1000000)
request = function()
  n = n + 1
  local body = string.format([[{"program":"shq-pret-loyer-2020","submit":true,"answers":{"income_support":"cerb","home":{"line1":"%d-%d, rue Saint-Denis","city":"Montréal","province":"QC","postal_code":"H2J 2L4"},"housing_type":"ordinary","lease_start":"2019-07-01","lease_end":"2020-06-30","lease_copy":"bail.pdf","told_landlord":true,"monthly_rent":"800.00 $","months_covered":"both","portion":"all","landlord_name":"Gestion Tremblay","landlord_email":"loyers@tremblay.example","landlord_address":{"line1":"4500, boulevard Saint-Laurent","city":"Montréal","province":"QC","postal_code":"H2T 1R2"},"landlord_bank":{"institution":"815","transit":"12345","account":"1234567"}}}]], tid, n)
  return wrk.format("POST", "/api/v1/dossiers", wrk.headers, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d seconds=%.2f rate=%.0f p50_ms=%.1f p99_ms=%.1f errors_status=%d errors_socket=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

run() { # name database-url
  local name=$1 url=$2 dir="$WORK/$1"
  mkdir -p "$dir"
  cat > "$dir/guichet.toml" <<TOML
database = "$url"
blob_dir = "$dir/blobs"
data_key = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
reference_date = "2020-05-10"
TOML
  "$BIN" admin publish --config "$dir/guichet.toml" programs/*.toml >/dev/null
  GUICHET_LOG=warn "$BIN" serve --config "$dir/guichet.toml" --listen 127.0.0.1:$PORT 2>"$dir/serve.log" &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf -H 'content-type: application/json' -d '{"email":"bench@example.org","password":"correct horse battery staple","name":"Bench"}' \
    "http://127.0.0.1:$PORT/api/v1/auth/register" >/dev/null
  local login cookie csrf
  login=$(curl -si -H 'content-type: application/json' -d '{"email":"bench@example.org","password":"correct horse battery staple"}' \
    "http://127.0.0.1:$PORT/api/v1/auth/login")
  cookie=$(echo "$login" | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\).*/\1/ip')
  csrf=$(echo "$login" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
  wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/post.lua" -H "content-type: application/json" -H "cookie: $cookie" \
    -H "x-csrf-token: $csrf" "http://127.0.0.1:$PORT" > "$dir/wrk.txt"
  local rss
  rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  echo "$name: $(grep RESULT "$dir/wrk.txt" | cut -d' ' -f2-) peak_rss_mb=$((rss / 1024))"
}

echo "== guichet serve, ${SECS}s, $CONNS connections, wrk -t2"
run sqlite "sqlite://$WORK/sqlite/guichet.db"
DB=guichet_bench_$$
psql "$PG" -qc "CREATE DATABASE $DB" >/dev/null
run postgres "${PG%/*}/$DB"
psql "$PG" -qc "DROP DATABASE $DB" >/dev/null

echo "== the limit without batching: single-row durable commits"
python3 - "$WORK/raw.db" "$SECS" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
n, end = 0, time.time() + float(sys.argv[2])
while time.time() < end:
    db.execute("INSERT INTO t (body) VALUES (?)", (b"x" * 600,)); n += 1
print(f"sqlite (WAL, synchronous=FULL, one row per commit): {n / float(sys.argv[2]):.0f} commits/s")
PY
psql "$PG" -qc "CREATE DATABASE $DB" >/dev/null
psql "${PG%/*}/$DB" -qc "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, body BYTEA)"
echo "INSERT INTO t (body) VALUES (decode(repeat('78', 600), 'hex'));" > "$WORK/insert.sql"
pgbench -n -c "$CONNS" -j 2 -T "$SECS" -f "$WORK/insert.sql" "${PG%/*}/$DB" 2>/dev/null \
  | sed -n 's/^tps = \([0-9.]*\).*/postgres (pgbench, one row per commit, '"$CONNS"' clients): \1 commits\/s/p'
psql "$PG" -qc "DROP DATABASE $DB" >/dev/null
rm -rf "$WORK"
