#!/usr/bin/env bash
# Idempotent installer for the real-framework session targets.
# Works as root on a fresh Debian machine (CI) and is a no-op when all is present.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
fi
pip_args=(-q --disable-pip-version-check --root-user-action=ignore -r "$here/requirements.txt")
# Debian's system Python is "externally managed" (PEP 668); allow installing into it.
if ! "$PY" -m pip install "${pip_args[@]}" 2>/dev/null; then
    "$PY" -m pip install --break-system-packages "${pip_args[@]}"
fi
# The drop-in probes (probes/python), installed as a user would: pip install ./probes/python.
# setuptools builds in the source tree; a stale build/ could be installed instead of the source.
rm -rf "$here/../../probes/python/build" "$here"/../../probes/python/*.egg-info
probe_args=(-q --disable-pip-version-check --root-user-action=ignore --no-deps --force-reinstall "$here/../../probes/python")
if ! "$PY" -m pip install "${probe_args[@]}" 2>/dev/null; then
    "$PY" -m pip install --break-system-packages "${probe_args[@]}"
fi
if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# The Debian package starts a system redis on :6379; the targets start their own.
echo "targets: python deps + $(redis-server --version | cut -d' ' -f3) ready"
