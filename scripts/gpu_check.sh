#!/usr/bin/env bash
# One command for a GPU machine: correctness on the GPU, then the benchmark and a step profile.
#   bash scripts/gpu_check.sh [FIXTURES_DIR]
# FIXTURES_DIR: the original code's parity fixtures (default ../shared/fixtures/upstream).
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=${1:-../shared/fixtures/upstream}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"
parity=()
[ -f "$fixtures/iqa_conformer_seed0.ckpt" ] && parity=(--fixtures "$fixtures")
# fp32 checks + the seed recipe's numerics (fp16 autocast), batch 16
python3 -m benchmarks.benchmark --device cuda --precision fp16 --steps 20 --rounds 3 --warmup 5 --workers 8 \
    --inference-pairs 160 --check "${parity[@]}" --profile
# larger batches show how much of batch 16 is fixed per-step overhead
python3 -m benchmarks.benchmark --device cuda --precision fp16 --steps 10 --rounds 2 --warmup 3 --workers 8 --batch-size 64 \
    --architectures IQA_Conformer --inference-pairs 16 --profile
# torch.compile with CUDA graphs against the per-step overhead (compilation takes a while)
python3 -m benchmarks.benchmark --device cuda --precision fp16 --steps 20 --rounds 2 --warmup 5 --workers 8 \
    --architectures IQA_Conformer --inference-pairs 16 --compile --compile-mode reduce-overhead
# the training loop itself with compile=True on this GPU: one demo epoch on synthetic data
run=$(mktemp -d)
python3 main.py -c configs/Demo/IQA_Conformer.py --mode training --set compile=True --set epochs=1 \
    --set data.root="$run/PIPAL" --set data.test_labels="$run/test_labels.txt" \
    --set callback_path="$run/run/" --set generation_path="$run/run/generation/"
rm -rf "$run"
