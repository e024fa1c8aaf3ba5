#!/usr/bin/env bash
# Times the `dealwatch` binary from outside, as a user runs it (issue bars: score --input on a
# 100K-deal CSV in under 1 s end to end; resident memory under 1 KB per deal; 1M generated deals
# in seconds; fit on 100K closed deals in under 5 s). Engine hot paths: `cargo bench -p engine`.
#
#   bot/benches/cli.sh            # builds the release binary, prints one line per measurement
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --bin dealwatch
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release/dealwatch"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
as_of=2026-06-30

# Best of three wall-clock seconds and the largest resident set (KB) of `$@`.
measure() {
    local best="" rss=0
    for _ in 1 2 3; do
        /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1
        read -r secs kb <"$work/time"
        if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; fi
        [ "$kb" -gt "$rss" ] && rss=$kb
    done
    echo "$best $rss"
}

read -r s kb < <(measure "$bin" generate --deals 1000000 --seed 1 --as-of $as_of --out "$work/1m.csv")
echo "generate 1M deals:                         ${s} s, max RSS ${kb} KB"

"$bin" generate --deals 100000 --seed 7 --as-of $as_of --out "$work/100k.csv" >/dev/null
"$bin" generate --deals 115000 --seed 5 --as-of $as_of --out "$work/115k.csv" >/dev/null
"$bin" train --input "$work/100k.csv" --as-of $as_of --out "$work/model.json" >/dev/null 2>&1
open=$("$bin" score --input "$work/100k.csv" --as-of $as_of --model-file "$work/model.json" --format csv 2>/dev/null | tail -n +2 | wc -l)

read -r s kb < <(measure "$bin" validate --input "$work/100k.csv" --as-of $as_of)
echo "validate a 100K-deal CSV:                  ${s} s, max RSS ${kb} KB"
for format in table json; do
    read -r s kb < <(measure "$bin" score --input "$work/100k.csv" --as-of $as_of --model-file "$work/model.json" --format $format)
    printf 'score --input 100K (%s open), %-5s:   %s s, max RSS %s KB = %s bytes per deal\n' \
        "$open" "$format" "$s" "$kb" "$((kb * 1024 / 100000))"
done
for threads in 1 2; do
    read -r s kb < <(measure "$bin" train --input "$work/115k.csv" --as-of $as_of --out "$work/m2.json" --threads $threads)
    echo "train additive on ~100K closed, $threads thread(s): ${s} s (read + validate + fit), max RSS ${kb} KB"
done
read -r s kb < <(measure "$bin" demo)
echo "demo (5,000 deals: generate, eval, train, score): ${s} s"
