# Shared by the service benchmarks: builds the release binary into $bin, makes a work directory
# (removed on exit, with the server in $server stopped), and report() reads oha's text report as
# p50 / p99 / max in milliseconds and the status codes.
command -v oha >/dev/null || { echo "needs oha: cargo install oha --locked" >&2; exit 1; }
cargo build --release --quiet --bin dealwatch
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release/dealwatch"
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
as_of=2026-06-30
duration=${DURATION:-30s}

# Starts `dealwatch serve` on a free port; sets $server and $url.
start_server() {
    "$bin" --as-of $as_of serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
    server=$!
    for _ in $(seq 300); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
    url=$(sed -n 's/^listening on //p' "$work/serve.out")
    [ -n "$url" ] || { cat "$work/serve.err" >&2; exit 1; }
}

stop_server() {
    kill -TERM "$server"
    wait "$server" 2>/dev/null || true
    server=""
}

report() {
    awk 'function ms(v, unit) { return unit == "sec" || unit == "s" ? v * 1000 : (unit == "ms" ? v : v / 1000) }
         /Success rate/ {ok=$3}
         /Slowest:/ {mx=ms($2, $3)}
         /50.00% in/ {p50=ms($3, $4)} /99.00% in/ {p99=ms($3, $4)}
         /Requests\/sec/ {rps=$2}
         /\[[0-9]+\] [0-9]+ responses/ {codes=codes $1 "x" $2 " "}
         END {printf "%.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, success %s, status %s\n", rps, p50, p99, mx, ok, codes}'
}
