#!/usr/bin/env bash
# Builds gradflow (configuring build/ first if needed) and runs every test:
#   tools/test.sh [extra ctest arguments, e.g. -R graph]
# Environment: GRADFLOW_BUILD_DIR (default build/), GRADFLOW_JOBS (default 2),
# GRADFLOW_CMAKE_ARGS (extra cmake arguments for a first configure).
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

ensure_configured
build_targets all
ctest --test-dir "${GRADFLOW_BUILD_DIR}" --output-on-failure -j "${GRADFLOW_JOBS}" "$@"
