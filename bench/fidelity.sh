#!/usr/bin/env bash
# The training-fidelity experiment (issue: reproduce the paper's large-minibatch result at small
# scale). Builds the runtime and modelc, compiles the zoo's resnet-fmnist, installs gnuplot-nox
# for the plot, and runs bench/fidelity.py (arguments pass through; see --help). Writes
# docs/fidelity_table.md, docs/fidelity.csv and docs/fidelity.png. A benchmark, not a test: it
# takes tens of minutes on 2 cores.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/../tools/lib.sh"
"${GRADFLOW_ROOT}/tools/setup.sh"
if ! command -v gnuplot >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends gnuplot-nox >/dev/null
fi
ensure_configured
build_targets modelc runtime
mkdir -p "${GRADFLOW_ROOT}/out"
"${GRADFLOW_BUILD_DIR}/models/modelc" resnet-fmnist -o "${GRADFLOW_ROOT}/out/resnet-fmnist.fb" >/dev/null
exec python3 "${GRADFLOW_ROOT}/bench/fidelity.py" --runtime "${GRADFLOW_BUILD_DIR}/runtime/runtime" \
  --graph "${GRADFLOW_ROOT}/out/resnet-fmnist.fb" "$@"
