#!/usr/bin/env bash
# bench/soak.sh: a long run against the built-in target, with sesscheck's resident memory
# sampled every 10 s. Writes reports/soak.md. A measurement, not a test (never run in CI).
#
#   bash bench/soak.sh                       # 10 minutes, 20 users, 100 ms think time
#   DURATION=60 USERS=50 bash bench/soak.sh  # shorter
#   PROFILE=release bash bench/soak.sh       # the release build (default: debug, as `cargo run`)
#
# Everything listens on 127.0.0.1; the run is bounded by DURATION; sesscheck stops the target it
# spawned itself.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-600}"
USERS="${USERS:-20}"
THINK="${THINK:-100ms}"
PROFILE="${PROFILE:-debug}"
OUT="${OUT:-reports/soak.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TMP="$(mktemp -d /tmp/sesscheck-soak.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

say() { printf '[soak] %s\n' "$*" >&2; }

if [ "$PROFILE" = release ]; then
    cargo build --release --quiet
else
    cargo build --quiet
fi
BIN="$TARGET_DIR/$PROFILE/sesscheck"

# The quick-start scenario, with people's pace: a think time between pages.
if grep -q '^think_time' scenarios/multiworker.toml; then
    sed -e "s/^think_time = .*/think_time = \"$THINK\"/" scenarios/multiworker.toml >"$TMP/soak.toml"
else
    sed -e "s/^\[load\]$/[load]\nthink_time = \"$THINK\"/" scenarios/multiworker.toml >"$TMP/soak.toml"
fi
grep -q "^think_time = \"$THINK\"" "$TMP/soak.toml" || { say "could not set think_time in the scenario"; exit 2; }
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

say "$BIN run (${DURATION} s, $USERS users, think time $THINK, port $PORT)"
"$BIN" run "$TMP/soak.toml" --url "http://127.0.0.1:$PORT" --users "$USERS" \
    --duration "${DURATION}s" --report-dir "$TMP/reports" --quiet >"$TMP/out.txt" 2>&1 &
PID=$!
: >"$TMP/rss.txt"
START=$(date +%s)
while kill -0 "$PID" 2>/dev/null; do
    sleep 10
    rss_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || true)"
    [ -n "$rss_kb" ] && echo "$(( $(date +%s) - START )) $rss_kb" >>"$TMP/rss.txt"
done
set +e
wait "$PID"
CODE=$?
set -e
REPORT="$(ls "$TMP"/reports/*.json | head -1)"

{
    echo "# sesscheck soak"
    echo
    echo "$("$BIN" --version), $PROFILE build, $(nproc) CPUs (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))."
    echo "\`scenarios/multiworker.toml\` with \`think_time = \"$THINK\"\`, \`--users $USERS --duration ${DURATION}s\`; exit code $CODE."
    echo
    echo "Resident memory (VmRSS) of the sesscheck process every 10 s:"
    echo
    echo "| t (s) | RSS (MB) |"
    echo "|---:|---:|"
    awk '{ printf "| %d | %.1f |\n", $1, $2 / 1024 }' "$TMP/rss.txt"
    echo
    python3 - "$REPORT" "$TMP/rss.txt" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
rss = [(int(t), int(kb) / 1024) for t, kb in (l.split() for l in open(sys.argv[2]) if l.strip())]
req = r["requests"]
print(f"{req['total']:,} requests ({req['per_second']:.0f}/s), {req['errors']} errors, "
      f"{r['auth']['probes']:,} probes ({r['auth']['authenticated']:,} authenticated), "
      f"p99 {r['latency_ms']['p99']} ms, verdict {r['verdict']}.")
steady = [m for t, m in rss if t >= 60]
if len(steady) >= 2:
    first, last = steady[0], steady[-1]
    span = rss[-1][0] - [t for t, _ in rss if t >= 60][0]
    print(f"\nFrom 60 s to the end: {first:.1f} -> {last:.1f} MB "
          f"(min {min(steady):.1f}, max {max(steady):.1f}); "
          f"{(last - first) * 1024 / max(span, 1):+.2f} KB/s, "
          f"{(last - first) * 1024 * 1024 / max(req['total'], 1):+.2f} bytes per request over the whole run.")
EOF
} >"$OUT"
say "wrote $OUT"
cat "$OUT"
