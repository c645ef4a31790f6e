#!/usr/bin/env bash
# A case worker's queue page with 1,000,000 dossiers stored (SQLite): the
# first page and a deep page (keyset cursor), filtered by program and
# state, sorted by submission, 50 per page — over HTTP with wrk, beside the
# same SELECT run directly by Python's sqlite3 (the floor); and the
# server's peak memory.
#
#   bash bench/queue.sh [dossiers] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
SECS=${2:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/guichet-target}
cargo build --release -q -p guichet
cargo build --release -q -p guichet-store --example seed
BIN=$CARGO_TARGET_DIR/release/guichet
PORT=18182
# QUEUE_DIR=D keeps the seeded database in D for the next run.
if [ -n "${QUEUE_DIR:-}" ]; then
  WORK=$QUEUE_DIR; mkdir -p "$WORK"
  trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
else
  WORK=$(mktemp -d /tmp/guichet-queue.XXXXXX)
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
fi
if [ ! -f "$WORK/guichet.toml" ]; then
  KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  cat > "$WORK/guichet.toml" <<TOML
database = "sqlite://$WORK/guichet.db"
blob_dir = "$WORK/blobs"
data_key = "$KEY"
TOML
  echo "== seeding $N dossiers"
  "$CARGO_TARGET_DIR/release/examples/seed" "sqlite://$WORK/guichet.db" "$KEY" "$N"
  echo "correct horse battery staple" | "$BIN" admin create --config "$WORK/guichet.toml" --email worker@example.org --name Worker >/dev/null
fi
# The SHQ programs were open in 2020: applications are evaluated as of then.
grep -q reference_date "$WORK/guichet.toml" || echo 'reference_date = "2020-05-10"' >> "$WORK/guichet.toml"
ls -la "$WORK/guichet.db" | awk '{printf "database file: %.0f MB\n", $5 / 1e6}'
GUICHET_LOG=warn "$BIN" serve --config "$WORK/guichet.toml" --listen 127.0.0.1:$PORT 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
LOGIN=$(curl -si -H 'content-type: application/json' -d '{"email":"worker@example.org","password":"correct horse battery staple"}' "http://127.0.0.1:$PORT/api/v1/auth/login")
COOKIE=$(echo "$LOGIN" | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\).*/\1/ip')
Q="program=shq-pret-loyer-2020&state=submitted&limit=50"
# A cursor half-way down the queue.
CURSOR=$(python3 - "$WORK/guichet.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("SELECT COUNT(*) FROM dossiers WHERE program='shq-pret-loyer-2020' AND state='submitted'").fetchone()[0]
ts, i = db.execute("SELECT submitted_at, id FROM dossiers WHERE program='shq-pret-loyer-2020' AND state='submitted' AND submitted_at IS NOT NULL ORDER BY submitted_at, id LIMIT 1 OFFSET ?", (n // 2,)).fetchone()
print(f"{ts}.{i}")
PY
)
cat > "$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("rate=%.0f/s p50_ms=%.2f p99_ms=%.2f non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
LUA
for page in "first:$Q" "deep:$Q&after=$CURSOR"; do
  name=${page%%:*}; query=${page#*:}
  curl -sf -H "cookie: $COOKIE" "http://127.0.0.1:$PORT/api/v1/dossiers?$query" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["items"]) == 50, d' 
  for c in 1 16; do
    echo "HTTP $name page, $c connection(s): $(wrk -t1 -c$c -d${SECS}s -s "$WORK/report.lua" -H "cookie: $COOKIE" "http://127.0.0.1:$PORT/api/v1/dossiers?$query" | tail -1)"
  done
done
# The screens (server-side render, HTML) with the same million dossiers:
# the case queue, the home page, and a citizen's dossier page.
"$BIN" admin publish --config "$WORK/guichet.toml" programs/*.toml >/dev/null 2>&1 || true
curl -s -o /dev/null -H 'content-type: application/json' -d '{"email":"bench-citizen@example.org","password":"correct horse battery staple","name":"Bench"}' "http://127.0.0.1:$PORT/api/v1/auth/register"
CLOGIN=$(curl -si -H 'content-type: application/json' -d '{"email":"bench-citizen@example.org","password":"correct horse battery staple"}' "http://127.0.0.1:$PORT/api/v1/auth/login")
CCOOKIE=$(echo "$CLOGIN" | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\).*/\1/ip')
CCSRF=$(echo "$CLOGIN" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
DOSSIER=$(curl -s -H 'content-type: application/json' -H "cookie: $CCOOKIE" -H "x-csrf-token: $CCSRF" \
  -d '{"program":"shq-pret-loyer-2020","submit":true,"answers":{"income_support":"cerb","home":{"line1":"1, rue A","city":"Montréal","province":"QC","postal_code":"H2J 2L4"},"housing_type":"ordinary","lease_start":"2019-07-01","told_landlord":true,"monthly_rent":"800.00 $","months_covered":"both","portion":"all","landlord_name":"Gestion","landlord_address":{"line1":"2, rue B","city":"Montréal","province":"QC","postal_code":"H2T 1R2"}}}' \
  "http://127.0.0.1:$PORT/api/v1/dossiers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for page in "queue page (HTML, 50 rows):$COOKIE:/file" "home page (HTML):$COOKIE:/" "dossier page (HTML, explanation):$CCOOKIE:/demandes/$DOSSIER"; do
  name=${page%%:*}; rest=${page#*:}; cookie=${rest%%:*}; path=${rest#*:}
  curl -sf -o /dev/null -H "cookie: $cookie" "http://127.0.0.1:$PORT$path"
  echo "HTML $name, 1 connection: $(wrk -t1 -c1 -d${SECS}s -s "$WORK/report.lua" -H "cookie: $cookie" "http://127.0.0.1:$PORT$path" | tail -1)"
done
echo "server peak memory: $(( $(awk '/VmHWM/ {print $2}' /proc/$PID/status) / 1024 )) MB"
kill -TERM $PID; wait $PID || true
python3 - "$WORK/guichet.db" "$CURSOR" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
ts, i = sys.argv[2].split(".", 1)
base = ("SELECT id, program, applicant, state, version, created_at, submitted_at, updated_at, assignee, amount, flags "
        "FROM dossiers WHERE program = ? AND state IN (?) AND submitted_at IS NOT NULL")
for name, sql, args in [("first", base + " ORDER BY submitted_at, id LIMIT 51", ("shq-pret-loyer-2020", "submitted")),
                        ("deep", base + " AND (submitted_at, id) > (?, ?) ORDER BY submitted_at, id LIMIT 51",
                         ("shq-pret-loyer-2020", "submitted", int(ts), i))]:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2:
        db.execute(sql, args).fetchall(); n += 1
    print(f"raw SQL {name} page (python sqlite3, same query): {(time.perf_counter() - start) / n * 1000:.2f} ms")
PY
