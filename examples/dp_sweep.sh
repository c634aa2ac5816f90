#!/usr/bin/env bash
# The privacy-utility curve on real handwritten digits: train a conditional GAN at
# epsilon in {1, 4, 10, none}, release a synthetic set from each, run the audit (utility = TSTR,
# the membership-attack suite, fidelity) on each, and draw utility and attack AUC against epsilon.
#
#   bash examples/dp_sweep.sh                       # ~minutes per run on a laptop CPU
#   EPOCHS=2 EPSILONS="1 none" bash examples/dp_sweep.sh   # a quick look
#
# Output in $OUT (default out/dp_sweep): gen_<eps>.pt, synth_<eps>.h5, audit_<eps>/ (report.html,
# summary.json), and dp_curve.png / dp_curve.json (the curve over all runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PGAN_NO_BOOTSTRAP:-}" ]; then
    bash scripts/bootstrap.sh
    export PATH="$PWD/.venv/bin:$PATH"
fi
out=${OUT:-out/dp_sweep}
epochs=${EPOCHS:-30}
size=${SIZE:-16}
epsilons=${EPSILONS:-"1 4 10 none"}
mkdir -p "$out"

pgan data digits --size "$size" -o "$out/real.h5"
pgan data split "$out/real.h5" --out-dir "$out/splits" --seed 0

summaries=()
for eps in $epsilons; do
    dp=()
    [ "$eps" != none ] && dp=(--dp-epsilon "$eps")      # delta defaults to min(1e-5, 1/(10 N))
    pgan train "$out/splits/train.h5" --arch dcgan --conditional --epochs "$epochs" "${dp[@]}" \
        --log "$out/train_$eps.jsonl" --log-every 5 --seed 0 -o "$out/gen_$eps.pt"
    pgan sample "$out/gen_$eps.pt" -n 1000 --seed 1 -o "$out/synth_$eps.h5"
    # utility (TSTR) and the attack suite (black-box on the samples, white-box with the checkpoint)
    pgan audit --members "$out/splits/train.h5" --holdout "$out/splits/holdout.h5" \
        --reference "$out/splits/reference.h5" --synthetic "$out/synth_$eps.h5" \
        --generator "$out/gen_$eps.pt" --train-log "$out/train_$eps.jsonl" \
        --seed 0 --out-dir "$out/audit_$eps" || [ $? -eq 1 ]    # exit 1 = a gate failed; keep going
    summaries+=("$out/audit_$eps/summary.json")
done

# utility and attack AUC against epsilon in one figure (pgan_cli.report.curve)
python - "$out" "${summaries[@]}" <<'EOF'
import json, sys
from pathlib import Path
from pgan_cli.report.curve import privacy_utility_curve

out, paths = Path(sys.argv[1]), sys.argv[2:]
points, fig = privacy_utility_curve(paths, title="DCGAN on digits: privacy vs utility")
fig.savefig(out / "dp_curve.png", dpi=120)
(out / "dp_curve.json").write_text(json.dumps(points, indent=2))
for p in points:
    print(f"epsilon {p['epsilon'] if p['epsilon'] is not None else 'none':>8}: "
          f"utility {p['utility']}, attack AUC {p['attack_auc']}")
print(f"wrote {out / 'dp_curve.png'}", file=sys.stderr)
EOF
