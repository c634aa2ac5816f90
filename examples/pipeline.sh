#!/usr/bin/env bash
# The audit's commands chained by hand, passing figures between them with jq: what `pgan audit`
# does in one go, step by step, with a planted leak as the synthetic set (no training needed).
# Needs jq. Knobs: OUT (default out/pipeline), FRACTION (share of copied members, 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
out=${OUT:-out/pipeline}
fraction=${FRACTION:-0.5}
mkdir -p "$out"

pgan data digits -o "$out/real.h5"
pgan data split "$out/real.h5" --out-dir "$out/s" --seed 0
# a "synthetic" set in which $fraction of the records are noisy copies of members
pgan data leak --members "$out/s/train.h5" --population "$out/s/reference.h5" \
    --fraction "$fraction" --noise 0.1 -n 400 --seed 0 -o "$out/leaky.h5"
n=$(pgan data info "$out/leaky.h5" --json | jq .n)
echo "synthetic set: $n records" >&2

# one feature space for every set, fitted on the members only
pgan embed "$out/s/train.h5" "$out/s/holdout.h5" "$out/leaky.h5" --method pca --dim 16 \
    --fit-on "$out/s/train.h5" --out-dir "$out/emb"
pgan knn "$out/emb/leaky.npy" "$out/emb/train.npy" -k 1 -o "$out/knn_synthetic.h5"
pgan knn "$out/emb/holdout.npy" "$out/emb/train.npy" -k 1 -o "$out/knn_holdout.h5"

pgan attack --members "$out/emb/train.npy" --holdout "$out/emb/holdout.npy" \
    --synthetic "$out/emb/leaky.npy" --methods dcr,pairwise,density --scores "$out/scores.h5" \
    --json > "$out/attack.json"
auc=$(jq '.attacks.dcr.auc' "$out/attack.json")
share=$(jq '.distances.dcr_share' "$out/attack.json")
echo "dcr AUC $auc, DCR share $share" >&2

pgan mmd "$out/emb/train.npy" "$out/emb/leaky.npy" --json > "$out/mmd.json"
jq -r '"MMD² \(.mmd2) (p = \(.p_value), \(.kernel) kernel, bandwidth \(.bandwidth))"' "$out/mmd.json" >&2
pgan fidelity "$out/emb/train.npy" "$out/emb/leaky.npy" --json > "$out/fidelity.json"
pgan utility --synthetic "$out/leaky.h5" --members "$out/s/train.h5" --holdout "$out/s/holdout.h5" \
    --json > "$out/utility.json"
jq -r '"TSTR balanced accuracy \(.tstr.balanced_accuracy) against TRTR \(.trtr.balanced_accuracy)"' \
    "$out/utility.json" >&2

# gate on figures chosen with jq: the worst black-box AUC must stay below 0.6
set +e
pgan report "$out/attack.json" "$out/scores.h5" "$out/mmd.json" "$out/fidelity.json" "$out/utility.json" \
    "$out/knn_synthetic.h5" "$out/knn_holdout.h5" --synthetic "$out/leaky.h5" \
    --gate 'privacy.max_black_box_auc <= 0.6' --gate 'fidelity.mmd.p_value >= 0.001' \
    -o "$out/report.html" --summary "$out/summary.json"
rc=$?
set -e
jq -r '.gates[] | "\(if .passed then "pass" else "FAIL" end)  \(.path) = \(.value) (\(.op) \(.threshold))"' \
    "$out/summary.json"
echo "verdict: $(jq -r .verdict "$out/summary.json"); report: $out/report.html (exit $rc)"
exit "$rc"
