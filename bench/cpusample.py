#!/usr/bin/env python3
"""bench/cpusample.py ROOT_PID STOP_FILE OUT_JSON: the CPU a target spends while a tool runs.

Samples /proc/<pid>/stat of ROOT_PID and all its descendants (a master and its workers) every
0.2 s until STOP_FILE exists (bench/run.sh creates it when the tool ends), then writes the
target's total CPU seconds (user + system) over that window and the busiest process's share of
one core (its CPU seconds / the window's wall seconds). A worker at >= 0.9 of a core means the
run measured the target, not the load generator. Ends by itself after 600 s.
"""
import json
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def tree(root):
    """ROOT and its descendants, by parent PID from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu(pid):
    """utime + stime of one process in seconds, None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def main():
    root, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    t0 = time.monotonic()
    first = {p: c for p in tree(root) if (c := cpu(p)) is not None}
    last = dict(first)
    while not os.path.exists(stop) and time.monotonic() - t0 < 600:
        time.sleep(0.2)
        for p in tree(root):
            c = cpu(p)
            if c is None:
                continue
            first.setdefault(p, c)  # a worker started during the run counts from here
            last[p] = c
    wall = max(time.monotonic() - t0, 1e-9)
    used = {p: last[p] - first[p] for p in last}
    busiest = max(used.values(), default=0.0)
    with open(out, "w") as f:
        json.dump({"cpu_s": sum(used.values()), "wall_s": wall, "busiest_share": busiest / wall,
                   "processes": len(used)}, f)


if __name__ == "__main__":  # bench/rsssample.py imports `tree`
    main()
