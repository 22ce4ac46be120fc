#!/usr/bin/env bash
# The protocol (--mode protocol) on a GPU: N splits side by side against N single runs, then a short protocol
# end to end. Prints the numbers docs/performance.md records for the protocol.
#   bash scripts/protocol_gpu.sh [LOG_DIR]
# LOG_DIR: where each part's log is written as well (default: a temporary folder). Every part runs under its own
# time limit and a failing part does not stop the others (about 10 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-$(mktemp -d)}
mkdir -p "$logs"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"

# 1. aggregate training pairs/s of 10 splits side by side (one trunk call, the heads batched under vmap)
#    against the 10 single runs of the loop (trunk lookahead + CUDA graph steps), in the same process;
#    target: ratio >= 4 (ten splits in under 3x the time of one)
timeout 300 python3 -m benchmarks.protocol --device cuda --splits 10 --crop-size 192 --steps 40 --rounds 3 --refs 80 \
    2>&1 | grep -v "step/s\|batch/s" | tee "$logs/protocol_benchmark.log"
# 2. the same with the heads in turn after the shared trunk call
timeout 200 python3 -m benchmarks.protocol --device cuda --splits 10 --crop-size 192 --steps 40 --rounds 2 --refs 80 \
    --heads in-turn 2>&1 | grep -v "step/s\|batch/s" | tee "$logs/protocol_benchmark_in_turn.log"
# 3. the command end to end on the GPU: 3 splits of the Demo recipe (fp16, batched heads), report, then a rerun
#    that finds everything done
run=$(mktemp -d)
protocol=(python3 main.py -c configs/Demo/IQA_Conformer.py --mode protocol --splits 3 --set epochs=3
          --set "swa_epochs=(2, 3)" --set data.test_fraction=0.25 --set model.backbone_weights=random
          --set data.root="$run/PIPAL"
          --set data.test_labels="$run/test_labels.txt" --set callback_path="$run/run/"
          --set generation_path="$run/run/generation/")
timeout 150 "${protocol[@]}" 2>&1 | grep -v "step/s\|batch/s\|group/s" | tee "$logs/protocol_run.log"
timeout 60 "${protocol[@]}" 2>&1 | grep -v "group/s" | tail -3 | tee -a "$logs/protocol_run.log"
ls -l "$run/run/protocol" | tee -a "$logs/protocol_run.log"
echo "logs in $logs"
