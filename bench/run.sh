#!/usr/bin/env bash
# bench/run.sh: sesscheck side by side with oha and wrk, on the same targets, with the same
# connection count and duration, keep-alive on for all; plus sesscheck's memory with 1,000 and
# 10,000 logged-in users. Writes reports/bench.md. A benchmark, not a test: it never fails on
# a figure, it records it.
#
#   bash bench/run.sh                  # defaults: 50 connections, 10 s per run
#   CONNS=100 DURATION=20 bash bench/run.sh
#   BIN=/path/to/sesscheck MEMORY=0 bash bench/run.sh   # a saved build, peers only (for A/B)
#
# Installs its peers if missing: oha (cargo install, crates.io), wrk, nginx and GNU time (apt).
# Everything listens on 127.0.0.1 only; every run is bounded in time; every process this script
# starts is stopped when it ends, also on error or Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CONNS="${CONNS:-50}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"         # wrk threads (the machine has 2 cores)
OUT="${OUT:-reports/bench.md}"
NICE="${NICE:-nice -n 10}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# BIN: benchmark that build instead of building this checkout (e.g. an earlier one, saved).
PREBUILT="${BIN:-}"
BIN="${BIN:-$TARGET_DIR/profiling/sesscheck}"
MEMORY="${MEMORY:-1}"           # 0: skip the 1,000/10,000-user memory runs
TMP="$(mktemp -d /tmp/sesscheck-bench.XXXXXX)"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '[bench] %s\n' "$*" >&2; }

# --- peers -------------------------------------------------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -qq >/dev/null; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v oha >/dev/null || { say "installing oha (cargo install oha --locked)"; $NICE cargo install oha --locked; }
command -v wrk >/dev/null || { say "installing wrk"; apt_install wrk; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { say "installing nginx"; apt_install nginx; }
[ -x /usr/bin/time ] || { say "installing GNU time"; apt_install time; }
command -v python3 >/dev/null || { say "installing python3"; apt_install python3; }
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [ -z "$PREBUILT" ]; then
    say "building sesscheck --profile profiling (release with debug info)"
    $NICE cargo build --profile profiling --quiet
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL
    for _ in $(seq 200); do
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "not ready: $1" >&2
    return 1
}
# Peak RSS (kB) from a `/usr/bin/time -v` log.
rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

# --- targets -----------------------------------------------------------------------------------
P_BUILTIN="$(free_port)"
P_NGINX="$(free_port)"
say "built-in target on 127.0.0.1:$P_BUILTIN (2 workers, shared store)"
"$BIN" target --host 127.0.0.1 --port "$P_BUILTIN" --workers 2 --store shared \
    --state-dir "$TMP/state" >"$TMP/target.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$P_BUILTIN/health"

mkdir -p "$TMP/www" "$TMP/nginx"
chmod 755 "$TMP" "$TMP/www"
printf 'hello from nginx\n' >"$TMP/www/index.html"
chmod 644 "$TMP/www/index.html"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$P_NGINX;
        root $TMP/www;
    }
}
EOF
say "nginx on 127.0.0.1:$P_NGINX"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
PIDS+=("$!")
wait_http "http://127.0.0.1:$P_NGINX/index.html"

# The peers cannot log in: give them one logged-in session cookie, so that the built-in target
# does the same session lookup for their requests as for sesscheck's.
curl -fsS -o /dev/null -c "$TMP/cookies" --max-time 5 \
    --data 'username=bench&password=demo' "http://127.0.0.1:$P_BUILTIN/login"
SESSION="$(awk '$6 == "session" {print $7}' "$TMP/cookies")"
[ -n "$SESSION" ] || { echo "could not log in to the built-in target" >&2; exit 1; }

OHA_JSON="-j"
oha --help 2>/dev/null | grep -q -- '--output-format' && OHA_JSON="--output-format json"

# --- runs --------------------------------------------------------------------------------------
ROWS="$TMP/rows.tsv"
: >"$ROWS"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }

run_sesscheck() { # label scenario url
    local label="$1" scenario="$2" url="$3" dir="$TMP/r-$1"
    say "$label: sesscheck ($CONNS users = connections, ${DURATION}s)"
    /usr/bin/time -v -o "$TMP/time-sc-$label" timeout $((DURATION + 60)) \
        "$BIN" run "$scenario" --url "$url" --users "$CONNS" --duration "${DURATION}s" \
        --report-dir "$dir" --quiet >"$TMP/out-sc-$label" 2>&1 || true
    python3 - "$dir" "$label" "$(rss_kb "$TMP/time-sc-$label")" >>"$ROWS" <<'EOF'
import glob, json, sys
d, label, rss = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(sorted(glob.glob(d + "/*.json"))[-1]))
traffic = sum(p["requests"] for p in r["phases"])
rps = traffic / r["duration_s"] if r["duration_s"] else 0
print(f'{label}\tsesscheck\t{rps:.0f}\t{r["latency_ms"]["p50"]:.3f}\t{r["latency_ms"]["p99"]:.3f}\t{rss}')
EOF
}

run_oha() { # label url [header]
    local label="$1" url="$2"
    say "$label: oha (-c $CONNS, ${DURATION}s)"
    local hdr=()
    [ $# -ge 3 ] && hdr=(-H "$3")
    # shellcheck disable=SC2086
    /usr/bin/time -v -o "$TMP/time-oha-$label" timeout $((DURATION + 60)) \
        oha --no-tui $OHA_JSON -z "${DURATION}s" -c "$CONNS" "${hdr[@]}" "$url" \
        >"$TMP/out-oha-$label" 2>"$TMP/err-oha-$label" || true
    python3 - "$TMP/out-oha-$label" "$label" "$(rss_kb "$TMP/time-oha-$label")" >>"$ROWS" <<'EOF'
import json, sys
f, label, rss = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(f))
p = r.get("latencyPercentiles", {})
ms = lambda v: (v or 0) * 1000
print(f'{label}\toha\t{r["summary"]["requestsPerSec"]:.0f}\t{ms(p.get("p50")):.3f}\t{ms(p.get("p99")):.3f}\t{rss}')
EOF
}

run_wrk() { # label url [header]
    local label="$1" url="$2"
    say "$label: wrk (-t $THREADS -c $CONNS, ${DURATION}s)"
    local hdr=()
    [ $# -ge 3 ] && hdr=(-H "$3")
    /usr/bin/time -v -o "$TMP/time-wrk-$label" timeout $((DURATION + 60)) \
        wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --latency "${hdr[@]}" "$url" \
        >"$TMP/out-wrk-$label" 2>&1 || true
    python3 - "$TMP/out-wrk-$label" "$label" "$(rss_kb "$TMP/time-wrk-$label")" >>"$ROWS" <<'EOF'
import re, sys
f, label, rss = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(f).read()
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)", s)
    v, u = float(m.group(1)), m.group(2)
    return v * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u]
rps = float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
print(f"{label}\twrk\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{rss}")
EOF
}

B="http://127.0.0.1:$P_BUILTIN"
N="http://127.0.0.1:$P_NGINX"
run_sesscheck builtin bench/builtin.toml "$B"
run_oha builtin "$B/dashboard" "Cookie: session=$SESSION"
run_wrk builtin "$B/dashboard" "Cookie: session=$SESSION"
run_sesscheck nginx bench/nginx.toml "$N"
run_oha nginx "$N/index.html"
run_wrk nginx "$N/index.html"

# Memory with many logged-in users (logins unpaced, then a page every 500 ms per user).
USERS_ROWS="$TMP/users.tsv"
: >"$USERS_ROWS"
USER_COUNTS="1000 10000"
[ "$MEMORY" = 0 ] && USER_COUNTS=""
for users in $USER_COUNTS; do
    say "sesscheck with $users logged-in users"
    dir="$TMP/u-$users"
    /usr/bin/time -v -o "$TMP/time-u-$users" timeout 120 \
        "$BIN" run bench/users.toml --url "$B" --users "$users" --duration 15s \
        --report-dir "$dir" --quiet >"$TMP/out-u-$users" 2>&1 || true
    python3 - "$dir" "$users" "$(rss_kb "$TMP/time-u-$users")" >>"$USERS_ROWS" <<'EOF'
import glob, json, sys
d, users, rss = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(sorted(glob.glob(d + "/*.json"))[-1]))
print(f'{users}\t{r["logins"]["ok"]}\t{r["requests"]["total"]}\t{rss / 1024:.1f}\t{r["verdict"]}')
EOF
done

# --- the table ---------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
python3 - "$ROWS" "$USERS_ROWS" "$CONNS" "$DURATION" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$(oha --version 2>/dev/null | head -1)" "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)" \
    "$("$NGINX" -v 2>&1)" "${PREBUILT:-$(git rev-parse --short HEAD)}" >"$OUT" <<'EOF'
import sys
rows_f, users_f, conns, dur, cpus, load, oha_v, wrk_v, nginx_v, rev = sys.argv[1:11]
rows = [l.rstrip("\n").split("\t") for l in open(rows_f) if l.strip()]
users = [l.rstrip("\n").split("\t") for l in open(users_f) if l.strip()]
print("# sesscheck benchmark\n")
print(f"sesscheck {rev}, {oha_v}, {wrk_v}, {nginx_v}; {cpus} CPUs shared by the load generator, "
      f"the target and whatever else runs (load average at the end: {load}). "
      f"{conns} connections, {dur} s per run, keep-alive on for all, all on 127.0.0.1.\n")
print("Built-in target: `sesscheck target --workers 2 --store shared`; sesscheck logs every user in "
      "(CSRF page + POST) and alternates `/dashboard` and the `/debug/session` probe (JSON parsed), "
      "one cookie jar per user; oha and wrk request `/dashboard` with one logged-in session cookie. "
      "nginx: a 17-byte static file; sesscheck without login or probe (still one jar per user).\n")
print("sesscheck's requests/s counts pages and probes (not logins) over the whole run, logins and "
      "start-up included, so it is a lower bound.\n")
print("| target | tool | requests/s | p50 ms | p99 ms | peak RSS MB | sesscheck / tool |")
print("|---|---|---:|---:|---:|---:|---:|")
by = {(r[0], r[1]): r for r in rows}
for r in rows:
    sc = by.get((r[0], "sesscheck"))
    ratio = ""
    if r[1] != "sesscheck" and sc and float(r[2]) > 0:
        ratio = f"{float(sc[2]) / float(r[2]):.2f}"
    rss = f"{int(r[5]) / 1024:.1f}" if r[5].isdigit() else "?"
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {rss} | {ratio} |")
print("\nGoals: sesscheck >= 0.90 x oha and >= 0.80 x wrk requests/s.\n")
for t in sorted({r[0] for r in rows}):
    sc = by.get((t, "sesscheck"))
    for peer, goal in (("oha", 0.9), ("wrk", 0.8)):
        p = by.get((t, peer))
        if sc and p and float(p[2]) > 0:
            ratio = float(sc[2]) / float(p[2])
            verdict = "met" if ratio >= goal else "NOT met"
            print(f"- {t}: sesscheck/{peer} = {ratio:.2f} (goal {goal:.2f}): {verdict}")
if not users:
    sys.exit(0)
print("\n## Memory with many logged-in users\n")
print("`bench/users.toml`: logins not paced, then one page per user every 500 ms for 15 s.\n")
print("| users | logins ok | requests | peak RSS MB | verdict |")
print("|---:|---:|---:|---:|---|")
for u in users:
    print(f"| {u[0]} | {u[1]} | {u[2]} | {u[3]} | {u[4]} |")
print("\nGoal: 10,000 users in under 150 MB.")
EOF
say "wrote $OUT"
cat "$OUT"
