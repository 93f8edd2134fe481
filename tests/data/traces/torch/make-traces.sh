#!/bin/sh
# The exact commands that made the traces in this folder (see README.md here).
# Run from the repository root with a Python that has PyTorch and torchvision, e.g.
#   sudo apt-get install python3-torch python3-torchvision
#   PYTHON=/usr/bin/python3 tests/data/traces/torch/make-traces.sh
# Each trace also records its command in its `command` metadata, and
# tests/integration/check_torch_traces.py checks that every one is listed below.
set -eu
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/../../../.."
"$PYTHON" scripts/trace_from_torch.py --model resnet50 --batch 256 --size 224 --steps 4 -o tests/data/traces/torch/resnet50-b256-224.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model vgg16 --batch 256 --size 224 --steps 4 -o tests/data/traces/torch/vgg16-b256-224.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model deeplabv3 --batch 8 --size 512 --steps 4 -o tests/data/traces/torch/deeplabv3-b8-512.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model deeplabv3 --batch 8 --size 1024 --steps 4 -o tests/data/traces/torch/deeplabv3-b8-1024.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model deeplabv3 --batch 8 --size 2048 --steps 4 -o tests/data/traces/torch/deeplabv3-b8-2048.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model unet3d --batch 2 --size 64 --steps 4 -o tests/data/traces/torch/unet3d-b2-64.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model unet3d --batch 2 --size 128 --steps 4 -o tests/data/traces/torch/unet3d-b2-128.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model unet3d --batch 2 --size 192 --steps 4 -o tests/data/traces/torch/unet3d-b2-192.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model bert-large --batch 8 --size 512 --steps 4 -o tests/data/traces/torch/bert-large-b8-s512.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model gpt2-medium --batch 8 --size 1024 --steps 4 -o tests/data/traces/torch/gpt2-medium-b8-s1024.trace.gz
# Larger sizes, in ladder/, for scripts/bench-policies' resolution search only (README.md here).
mkdir -p tests/data/traces/torch/ladder
"$PYTHON" scripts/trace_from_torch.py --model unet3d --batch 2 --size 256 --steps 4 -o tests/data/traces/torch/ladder/unet3d-b2-256.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model unet3d --batch 2 --size 320 --steps 4 -o tests/data/traces/torch/ladder/unet3d-b2-320.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model unet3d --batch 2 --size 384 --steps 4 -o tests/data/traces/torch/ladder/unet3d-b2-384.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model unet3d --batch 2 --size 448 --steps 4 -o tests/data/traces/torch/ladder/unet3d-b2-448.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model deeplabv3 --batch 8 --size 3072 --steps 4 -o tests/data/traces/torch/ladder/deeplabv3-b8-3072.trace.gz
"$PYTHON" scripts/trace_from_torch.py --model deeplabv3 --batch 8 --size 3584 --steps 4 -o tests/data/traces/torch/ladder/deeplabv3-b8-3584.trace.gz
