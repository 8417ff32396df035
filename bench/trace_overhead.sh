#!/usr/bin/env bash
# What tracing costs: the same training run with and without `--trace FILE --trace-iters A:B`, in
# one invocation, interleaved (off, on, off, on, ...) so drift in the machine's load hits both
# alike. Each run trains --iters iterations; the step times of iterations A..B (the traced window,
# from the run's --summary-json) are compared. Prints per repetition the median step time of each
# and their ratio, then the median ratio over repetitions (issue 6 wants it below 1.02).
#
# Usage: bench/trace_overhead.sh [--model NAME] [--batch N] [--iters N] [--window A:B]
#          [--reps N] [--threads N] [--build DIR] [--keep DIR]
#   --model NAME   zoo model, compiled with modelc [fmnist-cnn]
#   --batch N      images per iteration [32]; --threads N: compute threads [all]
#   --iters N      iterations per run [40]; --window A:B: traced iterations [6:40]
#   --reps N       pairs of runs [5]
#   --keep DIR     keep graphs, summaries and traces there (default: a temporary directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/../build"
model=fmnist-cnn
batch=32
iters=40
window=6:40
reps=5
threads=""
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --window) window="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "trace_overhead.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ ! "$window" =~ ^([0-9]+):([0-9]+)$ ]] || (( BASH_REMATCH[1] < 1 || BASH_REMATCH[2] < BASH_REMATCH[1] || BASH_REMATCH[2] > iters )); then
  echo "trace_overhead.sh: --window must be A:B with 1 <= A <= B <= --iters ($iters), got $window" >&2
  exit 2
fi
first="${BASH_REMATCH[1]}"
last="${BASH_REMATCH[2]}"
runtime="$build/runtime/runtime"
modelc="$build/models/modelc"
for tool in "$runtime" "$modelc"; do
  [[ -x "$tool" ]] || { echo "trace_overhead.sh: $tool not built" >&2; exit 1; }
done
if ! "$runtime" --help | grep -q -- '--trace-iters'; then
  echo "trace_overhead.sh: $runtime has no --trace/--trace-iters flags yet" >&2
  exit 1
fi

if [[ -n "$keep" ]]; then
  work="$keep"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
graph="$work/$model.fb"
"$modelc" "$model" -o "$graph" >/dev/null

common=(--graph "$graph" --data synthetic --batch "$batch" --iters "$iters" --epochs 1
        --log-every "$iters")
[[ -n "$threads" ]] && common+=(--threads "$threads")

# Median of the step times of iterations first..last in a summary JSON.
median_step() {
  python3 - "$1" "$first" "$last" <<'PY'
import json, statistics, sys
summary = json.load(open(sys.argv[1]))
times = summary["iteration_seconds"][int(sys.argv[2]) - 1:int(sys.argv[3])]
print(statistics.median(times))
PY
}

echo "model $model, batch $batch, $iters iterations per run, traced window $first:$last, $reps pairs"
printf '%-4s %14s %14s %8s %10s\n' rep "off ms/step" "on ms/step" ratio "trace MB"
ratios=()
for ((rep = 1; rep <= reps; ++rep)); do
  "$runtime" "${common[@]}" --summary-json "$work/off$rep.json" >/dev/null
  "$runtime" "${common[@]}" --summary-json "$work/on$rep.json" --trace "$work/trace$rep.json" \
    --trace-iters "$first:$last" >/dev/null
  off="$(median_step "$work/off$rep.json")"
  on="$(median_step "$work/on$rep.json")"
  ratio="$(python3 -c "print(f'{$on / $off:.4f}')")"
  ratios+=("$ratio")
  size="$(python3 -c "import os; print(f'{os.path.getsize(\"$work/trace$rep.json\") / 1e6:.1f}')")"
  printf '%-4s %14.3f %14.3f %8s %10s\n' "$rep" "$(python3 -c "print($off * 1000)")" \
    "$(python3 -c "print($on * 1000)")" "$ratio" "$size"
done
median="$(printf '%s\n' "${ratios[@]}" | python3 -c "import statistics, sys; print(f'{statistics.median(float(l) for l in sys.stdin):.4f}')")"
echo "median step-time ratio (traced / untraced): $median"
