#!/usr/bin/env python3
"""bench/rsssample.py ROOT_PID OUT_JSON: sesscheck's resident memory over a run, to show it flat.

Every 0.5 s, the RSS of ROOT_PID's descendants named `sesscheck` (bench/run.sh runs it under
/usr/bin/time and timeout), until ROOT_PID ends; writes [[seconds since start, RSS KiB], ...].
Ends by itself after 600 s.
"""
import json
import os
import sys
import time

from cpusample import tree  # ROOT and its descendants, by parent PID (same directory)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() != "sesscheck":
                return 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


root, out = int(sys.argv[1]), sys.argv[2]
start, samples = time.monotonic(), []
while os.path.exists(f"/proc/{root}") and time.monotonic() - start < 600:
    rss = sum(rss_kib(p) for p in tree(root))
    if rss:
        samples.append([round(time.monotonic() - start, 1), rss])
    time.sleep(0.5)
with open(out, "w") as f:
    json.dump(samples, f)
