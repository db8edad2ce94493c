#!/usr/bin/env bash
# Issue 23's GPU checks in one call, for a session that is lent the device machine (an H200;
# its python3 has torch with CUDA, torchvision and timm; cnnlab runs from src/, nothing to
# install). From the device tool:  run(command="bash benchmarks/gpu_check.sh", timeout_s=540)
# Each step has its own time limit so that one slow step cannot take the others' results;
# everything lands under $OUT (the device tool's folder that comes back).
#   1. cnnlab bench on the GPU: resnet50 and mobilenet_v2 at batch 1 and 256, the backends
#      that run on a GPU, the GPU's fp32/bf16/int8 matmul peaks, the pick.
#   2. Training throughput: `cnnlab train`'s epoch against a hand-written loop, ResNet-50,
#      synthetic 3x224x224, batch 256, bf16, channels-last, torch.compile.
#   3. cnnlab.fuse against torchvision's own eager forward (the item 1, literally) on
#      that machine's 16 CPU cores: torchvision cannot be installed where cnnlab is developed.
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
PY=${PY:-python3}
{
  date -u
  nvidia-smi -L
  "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__, torch.cuda.get_device_name())'
  nproc
} 2>&1 | tee "$OUT/machine.txt"
timeout 200 "$PY" -m cnnlab bench resnet50 mobilenet_v2 --device cuda --batch 1,256 \
  --backends eager,channels_last,bf16,fused,compile,compile_bf16 --peak --pick --repeats 5 \
  --markdown 2>&1 | tee "$OUT/bench_gpu.md"
timeout 200 "$PY" benchmarks/bench_gpu_train.py --device cuda --model resnet50 --size 224 \
  --batch 256 --images 2560 --amp bf16 --channels-last --compile --repeats 4 2>&1 \
  | tee "$OUT/train_gpu.txt"
timeout 100 "$PY" benchmarks/bench_fuse.py --reference torchvision --batch 1,8 --rounds 7 \
  --threads "$(nproc)" 2>&1 | tee "$OUT/fuse_vs_torchvision_cpu.txt"
