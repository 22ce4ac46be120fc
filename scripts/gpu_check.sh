#!/usr/bin/env bash
# One command for a GPU machine: correctness on the GPU, then the training loop and scoring at PIPAL scale.
#   bash scripts/gpu_check.sh [FIXTURES_DIR] [LOG_DIR]
# FIXTURES_DIR: the original code's parity fixtures (default ../shared/fixtures/upstream).
# LOG_DIR: where each part's log is written as well (default: a temporary folder).
# Every part runs under its own time limit and a failing part does not stop the others (about 8 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
fixtures=${1:-../shared/fixtures/upstream}
logs=${2:-$(mktemp -d)}
mkdir -p "$logs"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"
parity=()
[ -f "$fixtures/iqa_conformer_seed0.ckpt" ] && parity=(--fixtures "$fixtures")

# 1. parity with the original code's outputs (exact fp32), fast == plain (crops, eval outputs, first losses)
timeout 110 python3 -m benchmarks.benchmark --device cuda --precision fp16 --steps 8 --rounds 2 --warmup 3 \
    --workers 8 --inference-pairs 48 --check "${parity[@]}" 2>&1 | grep -v "batch/s" | tee "$logs/benchmark.log"
# 2. the training loop of main.py at PIPAL scale: default (lookahead + CUDA graphs), eager, plain, compile;
#    default vs eager losses with dropout off; a step profile; TenCrop in fp32 / TF32 / fp16
timeout 290 python3 -m benchmarks.recipe --device cuda --refs 60 --epochs 6 --compile 2>&1 \
    | grep -v "batch/s" | tee "$logs/recipe.log"
# 3. the command line end to end on the GPU: train (graph steps), average, evaluate, write the submission
run=$(mktemp -d)
timeout 100 python3 main.py -c configs/Demo/IQA_Conformer.py --mode pipeline --set epochs=3 --set "swa_epochs=(2, 3)" \
    --set data.root="$run/PIPAL" --set data.test_labels="$run/test_labels.txt" \
    --set callback_path="$run/run/" --set generation_path="$run/run/generation/" 2>&1 \
    | grep -v "batch/s" | tee "$logs/pipeline.log"
ls -la "$run/run" "$run/run/generation" 2>&1 | tee -a "$logs/pipeline.log"
rm -rf "$run"
