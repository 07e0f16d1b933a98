#!/usr/bin/env bash
# examples/ci/gate.sh SCENARIO [more `sesscheck run` options]: a session-stability gate for CI.
#
# Runs the scenario, keeps every report in $SESSCHECK_REPORT_DIR (default: reports/), appends the
# Markdown summary to the job summary when there is one ($GITHUB_STEP_SUMMARY on GitHub Actions),
# and exits with sesscheck's code: 0 pass, 1 session problems found (fail the job), 2 a broken
# scenario, 3 the target could not be reached, 4 nothing measured (no login worked: check the
# credentials), 130 interrupted. Both examples/ci/github-actions.yml
# and examples/ci/gitlab-ci.yml call it; this repository's own .ci/run runs it against the demo
# target.
#
# Settings come from the environment, so the same script serves staging and production:
#   SESSCHECK          the sesscheck binary (default: sesscheck on PATH)
#   SESSCHECK_URL, SESSCHECK_USERS, SESSCHECK_DURATION, ...   read by `sesscheck run` itself
set -uo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 SCENARIO [sesscheck run options]" >&2
    exit 2
fi
SESSCHECK="${SESSCHECK:-sesscheck}"
export SESSCHECK_REPORT_DIR="${SESSCHECK_REPORT_DIR:-reports}"
mkdir -p "$SESSCHECK_REPORT_DIR"
# The event stream tells which reports this run wrote (older ones may share the folder).
events="$(mktemp "${TMPDIR:-/tmp}/sesscheck-events.XXXXXX")"
trap 'rm -f "$events"' EXIT

"$SESSCHECK" run "$@" --events "$events"
code=$?

# The run's Markdown report: the `.md` path on its `run_finished` line.
md="$(grep '"event":"run_finished"' "$events" | grep -o '"[^"]*\.md"' | tr -d '"' | head -n 1)"
if [ -n "$md" ] && [ -f "$md" ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    cat "$md" >>"$GITHUB_STEP_SUMMARY"
fi

case "$code" in
    0) echo "gate: pass" ;;
    1) echo "gate: FAIL: session problems found; see ${md:-the reports in $SESSCHECK_REPORT_DIR}" >&2 ;;
    4) echo "gate: FAIL: nothing measured, no login worked (credentials? login path?); see ${md:-the reports in $SESSCHECK_REPORT_DIR}" >&2 ;;
    130) echo "gate: interrupted" >&2 ;;
    *) echo "gate: sesscheck could not run the check (exit $code)" >&2 ;;
esac
exit "$code"
