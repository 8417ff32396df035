# shellcheck shell=bash
# Shared by the tools/*.sh scripts (sourced, not run).
#
# Builds go through one lock file because several builds may share a small machine (and the same
# build dir); the scripts take it themselves, so do not wrap them in another flock on that file.

GRADFLOW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GRADFLOW_BUILD_DIR=${GRADFLOW_BUILD_DIR:-${GRADFLOW_ROOT}/build}
GRADFLOW_JOBS=${GRADFLOW_JOBS:-2}
GRADFLOW_BUILD_LOCK=${GRADFLOW_BUILD_LOCK:-/tmp/gradflow-build.lock}

# Runs a command while holding the build lock (or plainly where flock is missing).
with_build_lock() {
  if command -v flock >/dev/null; then
    flock "${GRADFLOW_BUILD_LOCK}" "$@"
  else
    "$@"
  fi
}

# Configures the main build dir the way CI does, unless it is configured already (then the
# settings chosen there are kept). Extra cmake arguments: GRADFLOW_CMAKE_ARGS.
ensure_configured() {
  if [[ -f "${GRADFLOW_BUILD_DIR}/CMakeCache.txt" ]]; then
    return 0
  fi
  # shellcheck disable=SC2086  # GRADFLOW_CMAKE_ARGS is a list of words
  with_build_lock cmake -S "${GRADFLOW_ROOT}" -B "${GRADFLOW_BUILD_DIR}" -G Ninja \
    -DGRADFLOW_WERROR=ON ${GRADFLOW_CMAKE_ARGS:-}
}

# Builds the given targets ("all" for everything) in the main build dir.
build_targets() {
  with_build_lock cmake --build "${GRADFLOW_BUILD_DIR}" -j "${GRADFLOW_JOBS}" --target "$@"
}
