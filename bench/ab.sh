#!/usr/bin/env bash
# bench/ab.sh BIN_A BIN_B [ROUNDS]: before/after comparison of two sesscheck builds on the
# built-in target with sessions on (bench/builtin.toml, 50 users, 10 s), alternating A and B so
# that background load hits both alike. Prints requests/s (pages + probes), CPU time (user +
# system) per request and peak RSS. Another target: URL=http://... SCENARIO=bench/nginx.toml
# (then no built-in target is started).
#
#   bash bench/ab.sh /tmp/sesscheck-before              # B: this checkout, built as below
#   bash bench/ab.sh /tmp/sesscheck-before /tmp/other 4
#
# Without BIN_B (or with BIN_B = "build") this checkout is built with the `profiling` profile
# (release with debug info, see Cargo.toml), the build bench/run.sh and the profilers use; save
# one with `cp target/profiling/sesscheck /tmp/sesscheck-before` to be the next A.
set -euo pipefail
cd "$(dirname "$0")/.."
A="$1"; B="${2:-build}"; ROUNDS="${3:-2}"; DURATION="${DURATION:-10}"; USERS="${USERS:-50}"
if [ "$B" = build ]; then
    nice -n 10 cargo build --profile profiling --quiet
    B="${CARGO_TARGET_DIR:-target}/profiling/sesscheck"
fi
TMP="$(mktemp -d /tmp/sesscheck-ab.XXXXXX)"
if [ -z "${URL:-}" ]; then
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    URL="http://127.0.0.1:$PORT"
    "$B" target --port "$PORT" --workers 2 --store shared --state-dir "$TMP/state" >/dev/null 2>&1 &
    TPID=$!
    trap 'kill -TERM $TPID 2>/dev/null; sleep 0.5; rm -rf "$TMP"' EXIT
    for _ in $(seq 100); do curl -fs -o /dev/null "$URL/health" && break; sleep 0.1; done
else
    trap 'rm -rf "$TMP"' EXIT
fi
for r in $(seq "$ROUNDS"); do
    for which in A B; do
        bin="$A"; [ "$which" = B ] && bin="$B"
        d="$TMP/$which-$r"
        /usr/bin/time -v -o "$TMP/t" timeout $((DURATION + 60)) "$bin" run "${SCENARIO:-bench/builtin.toml}" \
            --url "$URL" --users "$USERS" --duration "${DURATION}s" \
            --report-dir "$d" --quiet >/dev/null 2>&1 || true
        python3 - "$d" "$which" "$(awk -F': ' '/Maximum resident/ {print $2}' "$TMP/t")" \
            "$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$TMP/t")" <<'PY'
import glob, json, sys
r = json.load(open(glob.glob(sys.argv[1] + "/*.json")[0]))
t = sum(p["requests"] for p in r["phases"])
cpu_us = float(sys.argv[4]) * 1e6 / max(t, 1)
print(f'{sys.argv[2]}: {t / r["duration_s"]:.0f} req/s, {cpu_us:.1f} µs CPU/request, p50 {r["latency_ms"]["p50"]} ms, p99 {r["latency_ms"]["p99"]} ms, RSS {int(sys.argv[3]) / 1024:.1f} MB, verdict {r["verdict"]}')
PY
    done
done
