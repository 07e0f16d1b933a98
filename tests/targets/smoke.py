#!/usr/bin/env python3
"""Smoke test for the real-framework session targets.

For every target: start Redis (if needed) and the app under Gunicorn on free
loopback ports, then measure with bounded loops (every request has a
timeout, every loop at most 100 requests):

  * distinct worker PIDs over fresh connections (Connection: close);
  * whether one logged-in session stays authenticated on every probe;
  * flask_redis: survival across `kill -HUP <master>` (and what happens to
    requests in flight meanwhile) and across a full restart;
  * django db: survival across a full restart;
  * django db vs db-save-every: 4 threads load /dashboard with one shared
    cookie while a 5th logs out and in again every 0.5 s for ~5 s; count 400s.

Prints a summary table; exits 1 if any expectation fails.  Every process it
starts runs in its own process group and is killed in a finally block.

Usage: python3 smoke.py [TARGET ...]   (targets: flask_redis flask_random_secret
       flask_fs_per_worker django_db django_db_save_every django_locmem)
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
TIMEOUT = 5.0
PROBES = 40  # requests per probe loop (<= 100)
PY = sys.executable

RESULTS = []  # (target, check, measured, expected, ok)
NOTES = []


def record(target, check, measured, expected, ok):
    RESULTS.append((target, check, str(measured), expected, bool(ok)))
    print(f"  [{'ok' if ok else 'FAIL'}] {check}: {measured} (expected {expected})", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Proc:
    """A child in its own process group, logging to a file."""

    def __init__(self, name, cmd, cwd, env, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            for sig, wait in ((signal.SIGTERM, 8.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.p.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Workers left behind in the group (should not happen): kill them too.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


class Env:
    """Tracks every process started so they can all be stopped."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sesscheck-smoke-")
        self.procs = []

    def start(self, name, cmd, cwd, extra_env):
        env = dict(os.environ)
        env.update(extra_env)
        p = Proc(name, cmd, cwd, env, self.dir)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()

    def cleanup(self):
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_port_ping_redis(port, proc, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        if not proc.alive():
            break
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"redis on {port} not ready:\n{proc.tail()}")


def start_redis(env):
    port = free_port()
    p = env.start(f"redis-{port}", [
        "redis-server", "--port", str(port), "--bind", HOST, "--save", "",
        "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
    ], HERE, {})
    wait_port_ping_redis(port, p)
    return port, p


def wait_ready(base, proc, deadline=30.0):
    end = time.time() + deadline
    while time.time() < end:
        if not proc.alive():
            break
        try:
            r = requests.get(base + "/debug/session", timeout=2, headers={"Connection": "close"})
            if r.status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError(f"{base} not ready:\n{proc.tail()}")
    if not proc.alive():
        raise RuntimeError(f"{base} died:\n{proc.tail()}")
    # Ready = answering; workers that are still importing the app do not
    # accept yet.  Settle until two distinct workers answered (bounded).
    pids = set()
    for _ in range(60):
        try:
            r = requests.get(base + "/debug/session", timeout=2, headers={"Connection": "close"})
            pids.add(r.json()["worker"]["pid"])
        except (requests.RequestException, ValueError):
            pass
        if len(pids) >= 2:
            return
        time.sleep(0.1)


# ---------------------------------------------------------------- targets

def flask_cmd(port):
    return [PY, "-m", "gunicorn", "-w", "4", "-b", f"{HOST}:{port}", "app:app"]


def start_flask(env, name, port, extra):
    # flask_fs_per_worker makes its session dirs under TMPDIR: keep them in
    # the smoke run's own directory so cleanup removes them.
    extra = dict(extra, TMPDIR=env.dir)
    p = env.start(f"{name}-{port}", flask_cmd(port), os.path.join(HERE, name), extra)
    base = f"http://{HOST}:{port}"
    wait_ready(base, p)
    return base, p


def start_django(env, variant, port, db, extra=None):
    e = {"SESS_VARIANT": variant, "DJANGO_DB": db, "PYTHON": PY}
    e.update(extra or {})
    p = env.start(f"django-{variant}-{port}", ["./serve.sh", str(port)],
                  os.path.join(HERE, "django_app"), e)
    base = f"http://{HOST}:{port}"
    wait_ready(base, p)
    return base, p


# ---------------------------------------------------------------- client helpers

TOKEN_RE = re.compile(r'name="(csrfmiddlewaretoken|csrf_token)" value="([^"]+)"')


def form_token(base, cookies):
    r = requests.get(base + "/login", cookies=cookies, timeout=TIMEOUT,
                     headers={"Connection": "close"})
    r.raise_for_status()
    m = TOKEN_RE.search(r.text)
    assert m, "no CSRF hidden input on /login"
    cookies = dict(cookies)
    cookies.update(r.cookies.get_dict())
    return m.group(1), m.group(2), cookies


def login(base, cookies=None, username="alice"):
    """GET /login, POST /login; returns the cookie dict after login."""
    field, tok, cookies = form_token(base, cookies or {})
    r = requests.post(base + "/login", cookies=cookies, timeout=TIMEOUT,
                      allow_redirects=False, headers={"Connection": "close"},
                      data={"username": username, "password": "demo", field: tok})
    assert r.status_code == 302 and r.headers.get("Location") == "/dashboard", (
        r.status_code, r.headers.get("Location"), r.text[:200])
    cookies.update(r.cookies.get_dict())
    return cookies


def logout(base, cookies):
    """Fetch a fresh token from GET /login (Django rotates the CSRF secret
    on login), then POST /logout.  Returns (status, location, cookies)."""
    field, tok, cookies = form_token(base, cookies)
    r = requests.post(base + "/logout", cookies=cookies, timeout=TIMEOUT,
                      allow_redirects=False, headers={"Connection": "close"},
                      data={field: tok})
    cookies = dict(cookies)
    for k, v in r.cookies.get_dict().items():
        cookies[k] = v
    cookies = {k: v for k, v in cookies.items() if v not in ("", '""')}
    return r.status_code, r.headers.get("Location"), cookies


def probe(base, cookies, n=PROBES, concurrency=4):
    """n fresh-connection GETs of /debug/session from `concurrency` threads
    (sequential requests to Gunicorn sync workers often all land on the same
    worker); returns (auth, total, pids, auth_pids, errors)."""
    lock = threading.Lock()
    st = {"auth": 0, "total": 0, "errors": 0, "pids": set(), "auth_pids": set()}

    def one(k):
        for _ in range(k):
            try:
                r = requests.get(base + "/debug/session", cookies=cookies, timeout=TIMEOUT,
                                 headers={"Connection": "close"})
                d = r.json()
            except (requests.RequestException, ValueError):
                with lock:
                    st["errors"] += 1
                continue
            with lock:
                st["total"] += 1
                st["pids"].add(d["worker"]["pid"])
                if d["authenticated"]:
                    st["auth"] += 1
                    st["auth_pids"].add(d["worker"]["pid"])

    per = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    ts = [threading.Thread(target=one, args=(k,)) for k in per if k]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return st["auth"], st["total"], st["pids"], st["auth_pids"], st["errors"]


def check_workers(target, base, expect_min):
    _, total, pids, _, errors = probe(base, {})
    record(target, "distinct worker PIDs (4 clients, fresh conns)", f"{len(pids)} in {total} reqs",
           f">= {expect_min}", len(pids) >= expect_min and errors == 0)
    return pids


def check_sticks(target, base, cookies, healthy, label="login sticks on all probes"):
    auth, total, pids, auth_pids, errors = probe(base, cookies)
    for _ in range(2):
        # A buggy app can look healthy if every probe happened to reach the
        # worker that issued the login: probe again (bounded) before judging.
        if healthy or auth < total or errors:
            break
        a2, t2, p2, ap2, e2 = probe(base, cookies)
        auth, total, errors = auth + a2, total + t2, errors + e2
        pids |= p2
        auth_pids |= ap2
    m = f"{auth}/{total} authenticated, on {len(auth_pids)}/{len(pids)} workers"
    if healthy:
        record(target, label, m, "all", auth == total and total > 0 and errors == 0)
    else:
        record(target, label, m, "not all (bug)", 0 < total and auth < total and errors == 0)
    return auth, total


def dashboard_ok(base, cookies):
    r = requests.get(base + "/dashboard", cookies=cookies, timeout=TIMEOUT,
                     allow_redirects=False, headers={"Connection": "close"})
    return r.status_code, r.headers.get("Location")


def check_basic_shape(target, base):
    c = {}
    st, loc = dashboard_ok(base, c)
    ok1 = st == 302 and loc and loc.startswith("/login?next=")
    field, tok, c = form_token(base, c)
    r = requests.post(base + "/login", cookies=c, timeout=TIMEOUT, allow_redirects=False,
                      data={"username": "alice", "password": "wrong", field: tok})
    ok2 = r.status_code == 302 and r.headers.get("Location") == "/login?error=1"
    record(target, "anon dashboard / bad password", f"{st} {loc} / {r.status_code} "
           f"{r.headers.get('Location')}", "302 /login?next=.. / 302 /login?error=1", ok1 and ok2)


# ---------------------------------------------------------------- HUP / restart

def hup_test(target, base, master, cookies, healthy_after):
    """Send SIGHUP to the master while a client keeps requesting; wait until
    every worker PID has been replaced, then probe the login again."""
    _, _, old_pids, _, _ = probe(base, {}, n=20)
    stop = threading.Event()
    stats = {"ok": 0, "err": 0, "non200": 0, "errors": [], "max_s": 0.0}
    lock = threading.Lock()

    def hammer():
        for _ in range(30):
            if stop.is_set():
                break
            t1 = time.time()
            try:
                r = requests.get(base + "/dashboard", cookies=cookies, timeout=TIMEOUT,
                                 allow_redirects=False, headers={"Connection": "close"})
                key = "ok" if (r.status_code == 200 or (
                    not healthy_after and r.status_code == 302)) else "non200"
                err = None
            except requests.RequestException as e:
                key, err = "err", type(e).__name__
            with lock:
                stats[key] += 1
                stats["max_s"] = max(stats["max_s"], time.time() - t1)
                if err:
                    stats["errors"].append(err)

    # /dashboard is slowed by SLOW_MS so requests are in flight at the HUP.
    ts = [threading.Thread(target=hammer) for _ in range(3)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    os.kill(master.pid, signal.SIGHUP)
    t0 = time.time()
    new_pids = set()
    replaced = False
    for _ in range(60):  # bounded wait for the new generation
        time.sleep(0.25)
        _, _, pids, _, _ = probe(base, {}, n=8)
        new_pids |= pids
        if pids and not (pids & old_pids):
            replaced = True
            break
    took = time.time() - t0
    time.sleep(1.0)
    stop.set()
    for t in ts:
        t.join(60)
    record(target, "HUP: workers replaced", f"{replaced} in {took:.1f}s (old {sorted(old_pids)} -> "
           f"new {sorted(new_pids - old_pids)})", "True", replaced)
    record(target, "HUP: in-flight client errors",
           f"{stats['err']} conn errors {sorted(set(stats['errors']))}, {stats['non200']} "
           f"unexpected status, {stats['ok']} ok, slowest {stats['max_s']:.2f}s",
           "0 errors", stats["err"] == 0 and stats["non200"] == 0)
    return check_sticks(target, base, cookies, healthy_after, label="login survives HUP"
                        if healthy_after else "login lost after HUP")


# ---------------------------------------------------------------- race test

def race_test(target, base, expect_400):
    """4 threads GET /dashboard with one shared (current) cookie while a 5th
    logs out and in again every 0.5 s for ~5 s."""
    state = {"cookies": login(base)}
    lock = threading.Lock()
    stop = threading.Event()
    counts = {}
    first400 = {}
    relogins = [0]
    errs = []

    def reader():
        for _ in range(100):
            if stop.is_set():
                return
            with lock:
                c = dict(state["cookies"])
            try:
                r = requests.get(base + "/dashboard", cookies=c, timeout=TIMEOUT,
                                 allow_redirects=False, headers={"Connection": "close"})
            except requests.RequestException as e:
                with lock:
                    errs.append(type(e).__name__)
                continue
            with lock:
                counts[r.status_code] = counts.get(r.status_code, 0) + 1
                if r.status_code == 400 and not first400:
                    first400["body"] = r.text[:200]
                    first400["set_cookie"] = r.headers.get("Set-Cookie")
                    first400["content_type"] = r.headers.get("Content-Type")

    def relogger():
        end = time.time() + 5.0
        while time.time() < end and not stop.is_set():
            time.sleep(0.5)
            try:
                with lock:
                    c = dict(state["cookies"])
                st, loc, c = logout(base, c)
                if st != 302 or loc != "/login":
                    errs.append(f"logout {st} {loc}")
                c = login(base, c)
                with lock:
                    state["cookies"] = c
                relogins[0] += 1
            except Exception as e:  # noqa: BLE001 - record and go on
                errs.append(f"relogin: {type(e).__name__}: {e}")
        stop.set()

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads.append(threading.Thread(target=relogger))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    n400 = counts.get(400, 0)
    total = sum(counts.values())
    m = (f"{n400} x 400 of {total} (statuses {dict(sorted(counts.items()))}, "
         f"{relogins[0]} relogins, {len(errs)} client errors)")
    if expect_400:
        record(target, "concurrent logout race: HTTP 400s", m, "> 0", n400 > 0 and not errs)
    else:
        record(target, "concurrent logout race: HTTP 400s", m, "0", n400 == 0 and not errs)
    if errs:
        print("    errors:", errs[:5])
    if first400:
        NOTES.append(f"{target}: 400 body {first400['body']!r}, Content-Type "
                     f"{first400['content_type']!r}, Set-Cookie {first400['set_cookie']!r}")
    return n400


# ---------------------------------------------------------------- scenarios

def run_flask_redis(env):
    t = "flask_redis"
    rport, _ = start_redis(env)
    extra = {"REDIS_URL": f"redis://{HOST}:{rport}/0", "SLOW_MS": "300"}
    port = free_port()
    base, master = start_flask(env, t, port, extra)
    check_basic_shape(t, base)
    check_workers(t, base, 2)
    cookies = login(base)
    check_sticks(t, base, cookies, True)
    hup_test(t, base, master, cookies, True)
    master.stop()
    base, master = start_flask(env, t, port, extra)
    check_sticks(t, base, cookies, True, label="login survives full restart")
    st, loc, c2 = logout(base, cookies)
    a, n, _, _, _ = probe(base, cookies, n=10)
    record(t, "logout then old cookie", f"{st} {loc}; {a}/{n} authenticated", "302 /login; 0", st == 302 and loc == "/login" and a == 0)


def run_flask_buggy(env, t):
    port = free_port()
    base, master = start_flask(env, t, port, {})
    check_basic_shape(t, base)
    check_workers(t, base, 2)
    cookies = login(base)
    check_sticks(t, base, cookies, False)
    if t == "flask_random_secret":
        # Every new worker draws a new key: a HUP logs everybody out.
        auth, total = hup_test(t, base, master, cookies, False)
        record(t, "HUP: authenticated probes after", f"{auth}/{total}", "0", auth == 0)


def run_django(env, variant):
    t = "django_" + variant.replace("-", "_")
    db = os.path.join(env.dir, f"{t}.sqlite3")
    port = free_port()
    base, master = start_django(env, variant, port, db)
    check_basic_shape(t, base)
    check_workers(t, base, 2)
    healthy = variant != "locmem"
    cookies = login(base)
    check_sticks(t, base, cookies, healthy)
    if variant == "db":
        master.stop()
        base, master = start_django(env, variant, port, db)
        check_sticks(t, base, cookies, True, label="login survives full restart")
    if variant in ("db", "db-save-every"):
        race_test(t, base, expect_400=(variant == "db-save-every"))


SCENARIOS = {
    "flask_redis": run_flask_redis,
    "flask_random_secret": lambda env: run_flask_buggy(env, "flask_random_secret"),
    "flask_fs_per_worker": lambda env: run_flask_buggy(env, "flask_fs_per_worker"),
    "django_db": lambda env: run_django(env, "db"),
    "django_db_save_every": lambda env: run_django(env, "db-save-every"),
    "django_locmem": lambda env: run_django(env, "locmem"),
}


def main(argv):
    names = argv or list(SCENARIOS)
    for n in names:
        if n not in SCENARIOS:
            print(f"unknown target {n}; known: {' '.join(SCENARIOS)}")
            return 2
    env = Env()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for n in names:
            print(f"== {n}", flush=True)
            try:
                SCENARIOS[n](env)
            except Exception as e:  # noqa: BLE001
                record(n, "scenario ran", f"{type(e).__name__}: {e}", "no exception", False)
                for p in env.procs:
                    print(f"---- {p.name} log tail\n{p.tail()}")
            finally:
                env.stop_all()
    finally:
        env.cleanup()
    w = [max(len(r[i]) for r in RESULTS + [("target", "check", "measured", "expected")])
         for i in range(4)]
    w = [min(x, 70) for x in w]
    print("\nSUMMARY")
    hdr = ("target", "check", "measured", "expected")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)) + "  result")
    for r in RESULTS:
        print("  ".join(str(r[i]).ljust(w[i]) for i in range(4)) + ("  ok" if r[4] else "  FAIL"))
    for note in NOTES:
        print("note:", note)
    failed = [r for r in RESULTS if not r[4]]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
