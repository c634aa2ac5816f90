#!/usr/bin/env bash
# A CI gate: audit a synthetic set and fail (exit 1) when it leaks its training data.
#   examples/ci_gate.sh MEMBERS.h5 HOLDOUT.h5 SYNTHETIC.h5 [OUT_DIR]
# Environment: PRESET (default|strict, default: default), GATES (extra gates, one per line),
# GENERATOR (a checkpoint: adds the white-box attacks, reported but not in the presets).
# Exit codes: 0 the release passes, 1 a gate failed, 2 the audit could not run.
# The report (OUT_DIR/report.html) and summary.json are written in every case, for the CI artefacts.
set -uo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 MEMBERS.h5 HOLDOUT.h5 SYNTHETIC.h5 [OUT_DIR]" >&2
    exit 2
fi
members=$1 holdout=$2 synthetic=$3 out=${4:-audit}
args=(--members "$members" --holdout "$holdout" --synthetic "$synthetic" --out-dir "$out" --preset "${PRESET:-default}")
[ -n "${GENERATOR:-}" ] && args+=(--generator "$GENERATOR")
while IFS= read -r g; do
    [ -n "$g" ] && args+=(--gate "$g")
done <<< "${GATES:-}"
pgan audit "${args[@]}"
rc=$?
if [ -f "$out/summary.json" ] && command -v jq >/dev/null; then
    echo "gates:"
    jq -r '.gates[] | "  \(if .passed then "pass" else "FAIL" end)  \(.path) = \(.value) (\(.op) \(.threshold))"' \
        "$out/summary.json"
fi
case $rc in
    0) echo "audit passed: the synthetic set may be released (report: $out/report.html)" ;;
    1) echo "audit FAILED: the synthetic set leaks its training data (report: $out/report.html)" >&2 ;;
    *) echo "the audit could not run (exit $rc)" >&2 ;;
esac
exit "$rc"
