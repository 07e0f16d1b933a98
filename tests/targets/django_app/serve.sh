#!/usr/bin/env bash
# Usage: serve.sh PORT   (env: SESS_VARIANT, DJANGO_DB, SLOW_MS, WORKERS)
# Migrates the SQLite file named by DJANGO_DB (idempotent) and execs Gunicorn
# in the foreground, so the caller's PID is the Gunicorn master's PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
port="${1:?usage: serve.sh PORT}"
"${PYTHON:-python3}" manage.py migrate --noinput -v 0
exec "${PYTHON:-python3}" -m gunicorn -w "${WORKERS:-3}" -b "127.0.0.1:$port" sessproj.wsgi:application
