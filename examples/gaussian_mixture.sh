#!/usr/bin/env bash
# The seed experiment: DCGAN, WGAN and WGAN-GP (fully connected nets) on one Gaussian and on 8
# Gaussians on a ring, each scored against the true density with `pgan fidelity` (modes covered,
# share of high-quality samples within 3 standard deviations of a mode, log-likelihood under the
# true mixture, plus PRDC). Prints one table; every file stays in $OUT.
# Knobs: OUT (default out/gaussian), STEPS (generator steps per run, default 2000; the 8-mode
# figures of VEEGAN's paper need about 5000 for wgan-gp), N (points, 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
out=${OUT:-out/gaussian}
steps=${STEPS:-2000}
n=${N:-2000}
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"
for modes in 1 8; do
    pgan data gaussian --modes "$modes" -n "$n" --seed 0 -o "$out/real_$modes.h5"
    for arch in dcgan wgan wgan-gp; do
        run="$out/${arch}_$modes"
        echo "== $arch on $modes mode(s): $steps generator steps" >&2
        pgan train "$out/real_$modes.h5" --arch "$arch" --net mlp --steps "$steps" --seed 0 \
            --log "$run.jsonl" -o "$run.pt"
        pgan sample "$run.pt" -n "$n" --seed 1 -o "$run.h5"
        pgan fidelity "$out/real_$modes.h5" "$run.h5" --json > "$run.fidelity.json"
        jq -c --arg arch "$arch" --argjson modes "$modes" \
            '{arch: $arch, modes: $modes, modes_covered, modes_total, high_quality_fraction,
              log_likelihood, precision, recall}' "$run.fidelity.json" >> "$results"
    done
done
echo
printf '%-8s %5s %13s %12s %14s %9s %7s\n' arch modes covered high-quality log-likelihood precision recall
jq -r '[.arch, .modes, "\(.modes_covered)/\(.modes_total)", .high_quality_fraction, .log_likelihood,
        .precision, .recall] | @tsv' "$results" |
    while IFS=$'\t' read -r a m c h l p r; do
        printf '%-8s %5s %13s %12.3f %14.3f %9.3f %7.3f\n' "$a" "$m" "$c" "$h" "$l" "$p" "$r"
    done
echo "(all results: $results)"
