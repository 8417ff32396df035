#!/usr/bin/env bash
# The main job, end to end from a fresh checkout: install the dependencies, build, compile the
# models with modelc, and train the small ResNet of the zoo on Fashion-MNIST with the runtime,
# data-parallel across 2 local nodes (2 processes of 64 images each, global batch 128, gradients
# allreduced over Gloo on loopback while backward runs), with the paper's recipe and a cosine
# decay, which suits a 2-epoch run better than step decay.
#   tools/run_main_job.sh [extra runtime flags, e.g. --epochs 2]
# Writes out/resnet50.fb (ResNet-50's training graph, summarized) and out/resnet-fmnist.fb, and
# checkpoints to out/checkpoints/. Environment: GRADFLOW_OUT_DIR (default out/), plus those of
# tools/lib.sh.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

out_dir=${GRADFLOW_OUT_DIR:-${GRADFLOW_ROOT}/out}

"${GRADFLOW_ROOT}/tools/setup.sh"
ensure_configured
build_targets modelc runtime

modelc=${GRADFLOW_BUILD_DIR}/models/modelc
runtime=${GRADFLOW_BUILD_DIR}/runtime/runtime
mkdir -p "${out_dir}"
"${modelc}" resnet50 -o "${out_dir}/resnet50.fb"
"${modelc}" --print "${out_dir}/resnet50.fb"
"${modelc}" resnet-fmnist -o "${out_dir}/resnet-fmnist.fb"
# A fresh run each time: the checkpoints of an earlier run would otherwise be resumed.
rm -rf "${out_dir}/checkpoints"
"${runtime}" --graph "${out_dir}/resnet-fmnist.fb" --nodes 2 --data fashion-mnist --batch 64 \
  --epochs 2 --lr 0.4 --lr-decay cosine --checkpoint-dir "${out_dir}/checkpoints" "$@"
