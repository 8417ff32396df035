#!/usr/bin/env bash
# The main job, end to end from a fresh checkout. Today: install the dependencies, build, compile
# ResNet-50's training graph with modelc and print its summary. Training it (the runtime) is not
# built yet; this script grows with it.
#   tools/run_main_job.sh          (writes out/resnet50.fb)
# Environment: GRADFLOW_OUT_DIR (default out/), plus those of tools/lib.sh.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

out_dir=${GRADFLOW_OUT_DIR:-${GRADFLOW_ROOT}/out}

"${GRADFLOW_ROOT}/tools/setup.sh"
ensure_configured
build_targets modelc

modelc=${GRADFLOW_BUILD_DIR}/models/modelc
mkdir -p "${out_dir}"
"${modelc}" resnet50 -o "${out_dir}/resnet50.fb"
"${modelc}" --print "${out_dir}/resnet50.fb"
