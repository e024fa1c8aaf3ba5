#!/usr/bin/env bash
# Measures the service from outside, as its users meet it (issue 3 bars): import of a 100K-deal CSV
# into SQLite under 5 s; POST /v1/deals/score p99 under 5 ms at 1,000 requests/s; GET
# /v1/deals/high-risk over 100K deals p99 under 20 ms. The load generator is oha
# (`cargo install oha`); latencies are corrected for coordinated omission.
#
#   bot/benches/service.sh            # builds the release binary, prints what it measured
set -euo pipefail
cd "$(dirname "$0")/../.."
. bot/benches/common.sh
rate=${RATE:-1000}

export DEALWATCH_AUTH__HS256_SECRETS='["bench-secret-bench-secret-bench-secret-0123"]'
export DEALWATCH_LIMITS__PER_USER_PER_MINUTE=100000000
export DEALWATCH_LIMITS__PER_TENANT_PER_MINUTE=100000000
export DEALWATCH_LIMITS__PER_SOURCE_PER_MINUTE=100000000
export DEALWATCH_LOG__LEVEL=warn
# The API alone: no scheduled jobs (a catch-up retrain at start would share the cores).
export DEALWATCH_JOBS__RUN=false

"$bin" generate --deals 100000 --seed 7 --as-of $as_of --out "$work/100k.csv" >/dev/null

# Import: best of three, each into a new store.
best=""
for i in 1 2 3; do
    db="sqlite://$work/import$i.db"
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" --database "$db" --as-of $as_of import --tenant bench \
        --input "$work/100k.csv" >/dev/null 2>&1
    read -r secs kb <"$work/time"
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; fi
done
echo "import 100K deals into a new SQLite store: ${best} s (best of 3), max RSS ${kb} KB"
/usr/bin/time -f "%e" -o "$work/time" "$bin" --database "sqlite://$work/import1.db" --as-of $as_of import \
    --tenant bench --input "$work/100k.csv" >/dev/null 2>&1
secs=$(cat "$work/time")
echo "import the same file again (no changes):   ${secs} s"

export DEALWATCH_DATABASE__URL="sqlite://$work/import1.db"
"$bin" --as-of $as_of train --tenant bench >/dev/null 2>&1
"$bin" --as-of $as_of score --tenant bench --format csv >"$work/scores.csv" 2>/dev/null
open=$(($(wc -l <"$work/scores.csv") - 1))
deal=$(sed -n 2p "$work/scores.csv" | cut -d, -f1)
echo "store: 100K deals, ${open} open and scored"

start_server
"$bin" users set --tenant bench --user bench-admin --role admin >/dev/null
token=$("$bin" token --tenant bench --sub bench-admin --hours 1)
auth="Authorization: Bearer $token"


oha --no-tui -z 3s -q 500 -m POST -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"deal_id\": \"$deal\"}" "$url/v1/deals/score" >/dev/null # warm-up
printf 'POST /v1/deals/score {deal_id} at %s/s:    ' "$rate"
oha --no-tui -z "$duration" -q "$rate" --latency-correction -m POST -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"deal_id\": \"$deal\"}" "$url/v1/deals/score" | report
payload='{"deal_id":"NEW-1","amount":45000,"industry":"EdTech","region":"Europe","product":"Pro","lead_source":"Partner","stage":"Proposal","created_date":"2026-05-01"}'
printf 'POST /v1/deals/score {payload} at %s/s:     ' "$rate"
oha --no-tui -z "$duration" -q "$rate" --latency-correction -m POST -H "$auth" -H 'Content-Type: application/json' \
    -d "$payload" "$url/v1/deals/score" | report
# The first listing loads the scored deals into memory (once per scoring run); warm it up.
curl -fsS -o /dev/null -H "$auth" "$url/v1/deals/high-risk?limit=1"
curl -fsS -o /dev/null -H "$auth" "$url/v1/pipeline/metrics"
for query in "limit=50" "risk_category=both&sort_by=amount&order=desc&limit=200&offset=1000"; do
    printf 'GET /v1/deals/high-risk?%s at 200/s: ' "$query"
    oha --no-tui -z "$duration" -q 200 --latency-correction -H "$auth" "$url/v1/deals/high-risk?$query" | report
done
printf 'GET /v1/pipeline/metrics at 50/s:          '
oha --no-tui -z "$duration" -q 50 --latency-correction -H "$auth" "$url/v1/pipeline/metrics" | report
stop_server
