#!/usr/bin/env bash
# bench/run.sh: sesscheck beside wrk and oha, measured so that the figures say something about
# the load generator: for every tool and case, requests/s, the tool's CPU per request (user +
# system time ÷ requests), the target's CPU per request, and the busiest target worker's share
# of a core. A row whose busiest worker is at >= 0.9 of a core is flagged: it measured the
# target, not the tool. Plus sesscheck's peak RSS with 1,000, 10,000 and 100,000 logged-in users.
# Writes reports/bench.md (copy it to bench/RESULTS.md). A benchmark, not a test: it never
# fails on a figure, it records it.
#
# Cases (all keep-alive, CONNS connections = users, DURATION s each, on 127.0.0.1):
# sesscheck runs twice per case: as by default (one thread per core, as wrk's -t here) and
# with --threads 1.
#   sessions  nginx shaped as issue #19: POST /login -> 302 + Set-Cookie, GET /session -> the
#             probe JSON {"worker":{"pid":..},"authenticated":true}, a Set-Cookie on every
#             answer; sesscheck logs every user in and reads the probe every second request
#             (bench/sessions.toml); wrk and oha GET /session with one fixed Cookie header.
#   static    nginx, a 17-byte file; sesscheck without login or probe (bench/nginx.toml).
#   builtin   `sesscheck target --workers 2 --store shared` (bench/builtin.toml); the peers
#             GET /dashboard with one logged-in session cookie.
# nginx runs one worker per core, `reuseport` on the listen (each worker its own accept
# queue), so that the kernel spreads the connections over all workers.
#
#   bash bench/run.sh                  # defaults: 50 connections, 8 s per run, 1 round
#   CONNS=100 DURATION=10 ROUNDS=3 bash bench/run.sh     # the median of 3 rounds per row
#   BIN=/path/to/sesscheck MEMORY=0 bash bench/run.sh    # a saved build, no memory runs
#   CASES="sessions static" OHA=0 bash bench/run.sh   # some cases, without oha
#
# Installs its peers if missing: wrk, nginx and GNU time (apt), oha (cargo install from
# crates.io; if that fails the table says so and has no oha rows). Everything listens on
# 127.0.0.1 only; every run is bounded in time; every process this script starts is stopped
# when it ends, also on error or Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CONNS="${CONNS:-50}"
DURATION="${DURATION:-8}"
ROUNDS="${ROUNDS:-1}"
CASES="${CASES:-sessions static builtin}"
THREADS="${THREADS:-$(nproc)}"   # wrk threads
OUT="${OUT:-reports/bench.md}"
NICE="${NICE:-nice -n 10}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# BIN: benchmark that build instead of building this checkout (e.g. an earlier one, saved).
PREBUILT="${BIN:-}"
BIN="${BIN:-$TARGET_DIR/profiling/sesscheck}"
MEMORY="${MEMORY:-1}"           # 0: skip the 1,000/10,000/100,000-user memory runs
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
command -v wrk >/dev/null || { say "installing wrk"; apt_install wrk; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { say "installing nginx"; apt_install nginx; }
[ -x /usr/bin/time ] || { say "installing GNU time"; apt_install time; }
command -v python3 >/dev/null || { say "installing python3"; apt_install python3; }
command -v curl >/dev/null || { say "installing curl"; apt_install curl; }
OHA="${OHA:-1}"                 # 0: no oha (neither installed nor run)
if [ "$OHA" != 0 ] && ! command -v oha >/dev/null; then
    say "installing oha (cargo install oha --locked)"
    $NICE cargo install oha --locked >"$TMP/oha-install.log" 2>&1 \
        || say "oha did not install (see the table's note); going on without it"
fi
HAVE_OHA=""
[ "$OHA" != 0 ] && command -v oha >/dev/null && HAVE_OHA=1
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
# From a `/usr/bin/time -v` log: peak RSS (kB); user + system seconds.
rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
cpu_s() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$1"; }

# --- targets -----------------------------------------------------------------------------------
P_BUILTIN="$(free_port)"
P_STATIC="$(free_port)"
P_SESSIONS="$(free_port)"
say "built-in target on 127.0.0.1:$P_BUILTIN (2 workers, shared store)"
"$BIN" target --host 127.0.0.1 --port "$P_BUILTIN" --workers 2 --store shared \
    --state-dir "$TMP/state" >"$TMP/target.log" 2>&1 &
BUILTIN_PID="$!"
PIDS+=("$BUILTIN_PID")
wait_http "http://127.0.0.1:$P_BUILTIN/health"

mkdir -p "$TMP/www" "$TMP/nginx"
chmod 755 "$TMP" "$TMP/www"
printf 'hello from nginx\n' >"$TMP/www/index.html"
chmod 644 "$TMP/www/index.html"
# The session cookie every answer of the sessions case sets: the same value each time, with a
# lifetime (a sliding session, as Django's SESSION_SAVE_EVERY_REQUEST or a refreshed Flask
# permanent session). A fixed value: the bench's session is not a secret.
COOKIE_SET='session=bench0123456789abcdef; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax'
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
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
        listen 127.0.0.1:$P_STATIC reuseport;
        root $TMP/www;
    }
    server {
        listen 127.0.0.1:$P_SESSIONS reuseport;
        default_type text/html;
        add_header Set-Cookie "$COOKIE_SET" always;
        location = /health { return 200 "ok\n"; }
        location = /login {
            if (\$request_method = POST) { return 302 /dashboard; }
            return 200 "<form method=post><input name=username><input name=password></form>\n";
        }
        location = /session {
            default_type application/json;
            return 200 '{"worker":{"pid":\$pid},"authenticated":true}';
        }
        location / { return 200 "<h1>dashboard</h1>\n"; }
    }
}
EOF
say "nginx ($(nproc) workers, reuseport) on 127.0.0.1:$P_STATIC (static) and :$P_SESSIONS (sessions)"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
NGINX_PID="$!"
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$P_STATIC/index.html"
wait_http "http://127.0.0.1:$P_SESSIONS/health"

# The peers cannot log in: give them one logged-in session cookie, so that the built-in target
# does the same session lookup for their requests as for sesscheck's.
curl -fsS -o /dev/null -c "$TMP/cookies" --max-time 5 \
    --data 'username=bench&password=demo' "http://127.0.0.1:$P_BUILTIN/login"
SESSION="$(awk '$6 == "session" {print $7}' "$TMP/cookies")"
[ -n "$SESSION" ] || { echo "could not log in to the built-in target" >&2; exit 1; }

OHA_JSON="-j"
[ -n "$HAVE_OHA" ] && oha --help 2>/dev/null | grep -q -- '--output-format' && OHA_JSON="--output-format json"

# --- runs --------------------------------------------------------------------------------------
# One line per run: case tool round requests wall_s tool_cpu_s rss_kb target_cpu_s busiest_share
ROWS="$TMP/rows.tsv"
: >"$ROWS"

# measure CASE TOOL ROUND TARGET_PID -- COMMAND...: run COMMAND under /usr/bin/time while
# sampling the target's processes; leaves the time log in $TMP/time-CASE-TOOL-ROUND.
measure() {
    local case="$1" tool="$2" round="$3" tpid="$4"
    shift 5
    local tag="$case-$tool-$round"
    python3 bench/cpusample.py "$tpid" "$TMP/stop-$tag" "$TMP/cpu-$tag.json" &
    local sampler=$!
    PIDS+=("$sampler")
    /usr/bin/time -v -o "$TMP/time-$tag" timeout $((DURATION + 60)) "$@" \
        >"$TMP/out-$tag" 2>"$TMP/err-$tag" || true
    touch "$TMP/stop-$tag"
    wait "$sampler" || true
}

# record CASE TOOL ROUND REQUESTS WALL_S
record() {
    local tag="$1-$2-$3"
    python3 - "$TMP/cpu-$tag.json" "$@" "$(cpu_s "$TMP/time-$tag")" "$(rss_kb "$TMP/time-$tag")" \
        >>"$ROWS" <<'PY'
import json, sys
cpu = json.load(open(sys.argv[1]))
case, tool, rnd, requests, wall, tool_cpu, rss = sys.argv[2:9]
print("\t".join([case, tool, rnd, requests, wall, tool_cpu, rss or "0",
                 f'{cpu["cpu_s"]:.3f}', f'{cpu["busiest_share"]:.3f}']))
PY
}

run_sesscheck() { # case round target_pid scenario url [threads]
    local case="$1" round="$2" tpid="$3" scenario="$4" url="$5" threads="${6:-}"
    local tool=sesscheck extra=()
    if [ -n "$threads" ]; then
        tool="sesscheck-t$threads"
        extra=(--threads "$threads")
    fi
    local dir="$TMP/r-$1-$2-$tool"
    say "$case: $tool ($CONNS users = connections, ${DURATION}s)"
    measure "$case" "$tool" "$round" "$tpid" -- \
        "$BIN" run "$scenario" --url "$url" --users "$CONNS" --duration "${DURATION}s" \
        --report-dir "$dir" --quiet "${extra[@]}"
    # Pages + probes (not logins), over the load's duration.
    read -r requests wall < <(python3 - "$dir" <<'PY'
import glob, json, sys
files = sorted(glob.glob(sys.argv[1] + "/*.json"))
if not files:
    print(0, 1)
else:
    r = json.load(open(files[-1]))
    print(sum(p["requests"] for p in r["phases"]), r["duration_s"] or 1)
PY
)
    record "$case" "$tool" "$round" "$requests" "$wall"
}

# sesscheck on one thread, beside its default (one per core).
run_sesscheck_threads() { # case round target_pid scenario url
    [ "$(nproc)" -gt 1 ] || return 0
    run_sesscheck "$@" 1
}

run_wrk() { # case round target_pid url [header]
    local case="$1" round="$2" tpid="$3" url="$4"
    local hdr=()
    [ $# -ge 5 ] && hdr=(-H "$5")
    say "$case: wrk (-t $THREADS -c $CONNS, ${DURATION}s)"
    measure "$case" wrk "$round" "$tpid" -- \
        wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" "${hdr[@]}" "$url"
    read -r requests wall < <(python3 - "$TMP/out-$case-wrk-$round" <<'PY'
import re, sys
m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", open(sys.argv[1]).read())
if not m:
    print(0, 1)
else:
    print(m.group(1), float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[m.group(3)])
PY
)
    record "$case" wrk "$round" "$requests" "$wall"
}

run_oha() { # case round target_pid url [header]
    [ -n "$HAVE_OHA" ] || return 0
    local case="$1" round="$2" tpid="$3" url="$4"
    local hdr=()
    [ $# -ge 5 ] && hdr=(-H "$5")
    say "$case: oha (-c $CONNS, ${DURATION}s)"
    # shellcheck disable=SC2086
    measure "$case" oha "$round" "$tpid" -- \
        oha --no-tui $OHA_JSON -z "${DURATION}s" -c "$CONNS" "${hdr[@]}" "$url"
    read -r requests wall < <(python3 - "$TMP/out-$case-oha-$round" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
    print(sum(s["statusCodeDistribution"].values()), s["summary"]["total"])
except Exception:
    print(0, 1)
PY
)
    record "$case" oha "$round" "$requests" "$wall"
}

B="http://127.0.0.1:$P_BUILTIN"
S="http://127.0.0.1:$P_STATIC"
X="http://127.0.0.1:$P_SESSIONS"
XCOOKIE="Cookie: session=bench0123456789abcdef"
for round in $(seq "$ROUNDS"); do
    for case in $CASES; do
        case "$case" in
        sessions)
            run_sesscheck sessions "$round" "$NGINX_PID" bench/sessions.toml "$X"
            run_sesscheck_threads sessions "$round" "$NGINX_PID" bench/sessions.toml "$X"
            run_wrk sessions "$round" "$NGINX_PID" "$X/session" "$XCOOKIE"
            run_oha sessions "$round" "$NGINX_PID" "$X/session" "$XCOOKIE"
            ;;
        static)
            run_sesscheck static "$round" "$NGINX_PID" bench/nginx.toml "$S"
            run_sesscheck_threads static "$round" "$NGINX_PID" bench/nginx.toml "$S"
            run_wrk static "$round" "$NGINX_PID" "$S/index.html"
            run_oha static "$round" "$NGINX_PID" "$S/index.html"
            ;;
        builtin)
            run_sesscheck builtin "$round" "$BUILTIN_PID" bench/builtin.toml "$B"
            run_sesscheck_threads builtin "$round" "$BUILTIN_PID" bench/builtin.toml "$B"
            run_wrk builtin "$round" "$BUILTIN_PID" "$B/dashboard" "Cookie: session=$SESSION"
            run_oha builtin "$round" "$BUILTIN_PID" "$B/dashboard" "Cookie: session=$SESSION"
            ;;
        *) echo "unknown case $case (sessions, static, builtin)" >&2; exit 2 ;;
        esac
    done
done

# Memory with many logged-in users (logins unpaced, then a page every 500 ms per user): peak
# RSS, and RSS sampled at half and at 95 % of the load, to show it flat in time.
USERS_ROWS="$TMP/users.tsv"
: >"$USERS_ROWS"
USER_COUNTS="1000 10000 100000"
[ "$MEMORY" = 0 ] && USER_COUNTS=""
for users in $USER_COUNTS; do
    load_s=15
    [ "$users" -ge 100000 ] && load_s=60   # 100,000 logins take ~25 s of it
    say "sesscheck with $users logged-in users ($load_s s)"
    dir="$TMP/u-$users"
    /usr/bin/time -v -o "$TMP/time-u-$users" timeout $((load_s + 120)) \
        "$BIN" run bench/users.toml --url "$B" --users "$users" --duration "${load_s}s" \
        --report-dir "$dir" --quiet >"$TMP/out-u-$users" 2>&1 &
    runner=$!
    PIDS+=("$runner")
    python3 bench/rsssample.py "$runner" "$TMP/rss-u-$users.json" &
    sampler=$!
    PIDS+=("$sampler")
    wait "$runner" || true
    wait "$sampler" || true
    python3 - "$dir" "$users" "$(rss_kb "$TMP/time-u-$users")" "$TMP/rss-u-$users.json" \
        "$load_s" >>"$USERS_ROWS" <<'EOF2'
import glob, json, sys
d, users, rss, samples, load_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
r = json.load(open(sorted(glob.glob(d + "/*.json"))[-1]))
s = json.load(open(samples))
def at(t):
    """The RSS sampled nearest to t seconds, in MB."""
    return min(s, key=lambda x: abs(x[0] - t))[1] / 1024 if s else float("nan")
print(f'{users}\t{r["logins"]["ok"]}\t{r["requests"]["total"]}\t{rss / 1024:.1f}\t'
      f'{rss / users:.1f}\t{at(load_s * 0.5):.1f}\t{at(load_s * 0.95):.1f}\t{load_s:.0f}\t{r["verdict"]}')
EOF2
done

# --- the table ---------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
OHA_V="oha not installed"
[ "$OHA" = 0 ] && OHA_V="oha not run (OHA=0)"
[ -n "$HAVE_OHA" ] && OHA_V="$(oha --version 2>/dev/null | head -1)"
python3 - "$ROWS" "$USERS_ROWS" "$CONNS" "$DURATION" "$ROUNDS" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$OHA_V" "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)" \
    "$("$NGINX" -v 2>&1)" "${PREBUILT:-$(git rev-parse --short HEAD)}" >"$OUT" <<'EOF'
import statistics, sys
rows_f, users_f, conns, dur, rounds, cpus, load, oha_v, wrk_v, nginx_v, rev = sys.argv[1:12]
runs = {}
for line in open(rows_f):
    if not line.strip():
        continue
    case, tool, _rnd, req, wall, tcpu, rss, target_cpu, busiest = line.rstrip("\n").split("\t")
    req, wall = int(req), float(wall)
    runs.setdefault((case, tool), []).append({
        "rps": req / wall if wall else 0, "req": req,
        "tool_us": float(tcpu) * 1e6 / req if req else float("nan"),
        "target_us": float(target_cpu) * 1e6 / req if req else float("nan"),
        "busiest": float(busiest), "rss": int(rss) / 1024})
users = [l.rstrip("\n").split("\t") for l in open(users_f) if l.strip()]
def median_run(rs):
    """The run with the median req/s (its other figures with it, so a row is one run)."""
    return sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
rows = {k: median_run(v) for k, v in runs.items()}
print("# sesscheck benchmark\n")
print(f"sesscheck {rev}, {oha_v}, {wrk_v}, {nginx_v}; {cpus} CPUs shared by the load generator "
      f"and the target (load average at the end: {load}). {conns} connections (= sesscheck's "
      f"users), {dur} s per run, keep-alive on for all, all on 127.0.0.1; each row is the run "
      f"with the median requests/s of {rounds}.\n")
print("- **sessions**: nginx (one worker per core, `reuseport`) shaped as issue #19: `POST "
      "/login` answered `302` + `Set-Cookie`, `GET /session` answering the probe JSON "
      "`{\"worker\":{\"pid\":..},\"authenticated\":true}`, a `Set-Cookie` (same value, "
      "`Max-Age`) on every answer. sesscheck logs each user in and alternates `/dashboard` and "
      "the probe (JSON read), one cookie jar per user; wrk and oha GET `/session` with one "
      "fixed `Cookie` header and ignore the cookies they get.")
print("- **static**: the same nginx, a 17-byte file; sesscheck without login or probe (still one "
      "jar per user).")
print("- **builtin**: `sesscheck target --workers 2 --store shared`; sesscheck logs every user in "
      "(CSRF page + POST) and alternates `/dashboard` and the `/debug/session` probe; the peers "
      "GET `/dashboard` with one logged-in session cookie.\n")
print("*tool CPU/req*: the tool's user + system time ÷ its requests (sesscheck: pages + probes, "
      "logins and start-up in the time but not in the count). *target CPU/req*: the CPU of "
      "all target processes during the run ÷ the same requests. *busiest worker*: the busiest "
      "target process's share of one core over the run; **≥ 0.9 is flagged: that row measured "
      "the target, not the load generator**.\n")
print("| case | tool | requests/s | ÷ wrk | tool CPU µs/req | target CPU µs/req | busiest worker | peak RSS MB |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
order = {"sessions": 0, "static": 1, "builtin": 2}
tools = {"wrk": 0, "oha": 1, "sesscheck": 2}
flagged = []
for (case, tool), r in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 9), tools.get(kv[0][1], 9))):
    w = rows.get((case, "wrk"))
    ratio = f'{r["rps"] / w["rps"]:.2f}' if w and w["rps"] else ""
    flag = ""
    if r["busiest"] >= 0.9:
        flag = " ⚠ target-bound"
        flagged.append(f"{case}/{tool}")
    shown = tool.replace("sesscheck-t", "sesscheck --threads ")
    print(f'| {case} | {shown} | {r["rps"]:,.0f} | {ratio} | {r["tool_us"]:.1f} | '
          f'{r["target_us"]:.1f} | {r["busiest"]:.2f}{flag} | {r["rss"]:.1f} |')
print()
if oha_v == "oha not installed":
    print("oha: not installed (`cargo install oha --locked` failed or was not reachable); no oha rows.\n")
elif oha_v.startswith("oha not run"):
    print("oha: not run (OHA=0); no oha rows.\n")
if flagged:
    print("Target-bound rows (busiest worker ≥ 0.9 of a core; their requests/s say little about "
          "the tool): " + ", ".join(flagged) + ".\n")
else:
    print("No row is target-bound (every target worker below 0.9 of a core).\n")
w = rows.get(("sessions", "wrk"))
ok = lambda c: "met" if c else "NOT met"
for (case, tool), s in sorted(rows.items()):
    if case != "sessions" or not tool.startswith("sesscheck") or not w:
        continue
    shown = tool.replace("sesscheck-t", "sesscheck --threads ")
    print(f'Goals (issue #19), sessions case, {shown}: {s["tool_us"]:.1f} µs CPU per request '
          f'(goal ≤ 6): {ok(s["tool_us"] <= 6)}; {s["rps"] / w["rps"]:.2f} × wrk requests/s '
          f'(goal ≥ 0.8): {ok(s["rps"] / w["rps"] >= 0.8)}.\n')
if not users:
    sys.exit(0)
print("## Memory with many logged-in users\n")
print("`bench/users.toml` against the built-in target: logins not paced, then one page per user "
      "every 500 ms, at most 200 connections (so with 100,000 users most of them wait for one); "
      "RSS sampled every 0.5 s, shown at half and at 95 % of the load.\n")
print("| users | load s | logins ok | requests | peak RSS MB | peak RSS ÷ users, KiB | RSS at 1/2, MB | RSS at 95 %, MB | verdict |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for u in users:
    print(f"| {u[0]} | {u[7]} | {u[1]} | {u[2]} | {u[3]} | {u[4]} | {u[5]} | {u[6]} | {u[8]} |")
big = [u for u in users if int(u[0]) >= 100000]
if big:
    print(f"\nGoal (issue #19): 100,000 logged-in users in < 600 MB: {big[0][3]} MB, "
          f"{'met' if float(big[0][3]) < 600 else 'NOT met'}; ≤ 5 KiB per user: {big[0][4]} KiB, "
          f"{'met' if float(big[0][4]) <= 5 else 'NOT met'}.")
EOF
say "wrote $OUT"
cat "$OUT"
