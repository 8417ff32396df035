#!/usr/bin/env bash
# Fuzzes the graph loader with libFuzzer, ASan and UBSan for a while:
#   tools/fuzz.sh [SECONDS]        (default 60)
# Uses its own build dir (build-fuzz/, clang, CUDA off); the corpus grows in build-fuzz/corpus/
# across runs. Exits non-zero when the fuzzer finds a crash, leak, sanitizer report or hang; the
# input that did it is saved in build-fuzz/artifacts/<run>/ and replays with
#   build-fuzz/tests/fuzz/graph_loader_fuzzer build-fuzz/artifacts/<run>/<file>
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "$0")/lib.sh"

seconds=${1:-60}
if ! [[ "${seconds}" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]   (a positive number of seconds, got '${seconds}')" >&2
  exit 2
fi

fuzz_build=${GRADFLOW_FUZZ_BUILD_DIR:-${GRADFLOW_ROOT}/build-fuzz}
with_build_lock cmake -S "${GRADFLOW_ROOT}" -B "${fuzz_build}" -G Ninja \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRADFLOW_FUZZ=ON -DGRADFLOW_CUDA=OFF -DGRADFLOW_BUILD_BENCH=OFF
# The fuzzer depends on the seed target, which runs modelc: nothing else needs building.
with_build_lock cmake --build "${fuzz_build}" -j "${GRADFLOW_JOBS}" --target graph_loader_fuzzer

corpus=${fuzz_build}/corpus
# One folder per run, so that a failure lists only what this run found.
artifacts=${fuzz_build}/artifacts/$(date +%Y%m%d-%H%M%S)
mkdir -p "${corpus}" "${artifacts}"

# New interesting inputs go into the first directory; the others are read-only seeds.
status=0
"${fuzz_build}/tests/fuzz/graph_loader_fuzzer" \
  -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="${artifacts}/" \
  "${corpus}" "${GRADFLOW_ROOT}/tests/fuzz/corpus" "${fuzz_build}/tests/fuzz/seeds" || status=$?

if [[ ${status} -ne 0 ]]; then
  echo "fuzz: graph_loader_fuzzer failed (exit ${status}); inputs that did it:" >&2
  ls -l "${artifacts}" >&2
  exit "${status}"
fi
echo "fuzz: ${seconds} s without a crash; corpus has $(find "${corpus}" -type f | wc -l) inputs"
