#!/usr/bin/env bash
# Accuracy of shared-reference batching (data.shared_reference_group=4) against ordinary batches.
#
#   bash scripts/shared_reference_accuracy.sh [OUTPUT_FOLDER] [SEEDS...]
#
# The demo recipe (IQA Conformer, 6 epochs, SWA of epochs 4-6) on a synthetic PIPAL with 16
# references (12 for training, 4 held out), once per seed and grouping; prints the validation
# SRCC/PLCC of each averaged model and their means. About 2 minutes a run on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
output=${1:-/tmp/shared_reference_accuracy}
shift $(($# > 0 ? 1 : 0))
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
mkdir -p "$output"

for group in 1 4; do
    for seed in "${seeds[@]}"; do
        run="$output/group$group-seed$seed"
        [ -f "$run/evaluation_checkpoints_swa-equal-4-6_validation.json" ] && continue
        python3 main.py -c configs/Demo/IQA_Conformer.py --mode pipeline \
            --set seed="$seed" --set data.shared_reference_group="$group" \
            --set data.root="$output/PIPAL" --set data.synthetic_refs=16 \
            --set data.test_labels="$output/test_labels.txt" \
            --set callback_path="$run/" --set generation_path="$run/generation/" > "$run.log" 2>&1 \
            || { echo "run $run failed, see $run.log" >&2; exit 1; }
    done
done

python3 - "$output" <<'EOF'
import json
import statistics
import sys
from pathlib import Path

results = {}
for path in sorted(Path(sys.argv[1]).glob("group*-seed*/evaluation_checkpoints_swa-equal-4-6_validation.json")):
    group = path.parent.name.split("-")[0]
    results.setdefault(group, []).append(json.loads(path.read_text())["overall"])
print(f"{'batches':<28} {'runs':>4} {'val SRCC':>20} {'val PLCC':>20}")
for group, runs in results.items():
    label = "ordinary (g=1)" if group == "group1" else f"shared reference (g={group[5:]})"
    cells = []
    for metric in ("srcc", "plcc"):
        values = [run[metric] for run in runs]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
    each = ", ".join(f"{run['srcc']:.3f}" for run in runs)
    print(f"{label:<28} {len(runs):>4} {cells[0]:>20} {cells[1]:>20}   (SRCC of each run: {each})")
EOF
