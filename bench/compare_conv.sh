#!/usr/bin/env bash
# gradflow's CPU convolutions against PyTorch's on every distinct ResNet-50 shape, in one run:
# per shape, conv_bench and torch_conv_bench.py back to back (who goes first alternates, so that
# a drift in machine load does not favour one side), then one table (conv_table.py).
#
# Usage: bench/compare_conv.sh [--build DIR] [--threads N] [--batch N] [--repeats N]
#                              [--min-time SECONDS] [--out DIR] [--shapes NAME,NAME,...]
#                              [--wait-load LOAD]  (first wait, up to 15 min, for the 1-min load < LOAD)
#                              [--keep]  (measure --shapes again into an existing --out, keeping the
#                                         other shapes' results: for shapes a busy machine spoiled)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/quiet.sh
source "$here/quiet.sh"
build="$here/../build"
threads="${GRADFLOW_BENCH_THREADS:-2}"
batch=16
repeats=5
min_time=0.1
out=""
only=""
wait_load=""
keep=0
python=/usr/bin/python3

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --min-time) min_time="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --shapes) only="$2"; shift 2 ;;
    --wait-load) wait_load="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage ;;
    *) echo "compare_conv.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

bench="$build/bench/conv_bench"
if [[ ! -x "$bench" ]]; then
  echo "compare_conv.sh: no $bench; build it: cmake --build $build --target conv_bench" >&2
  exit 1
fi
if (( keep )); then
  if [[ -z "$out" || -z "$only" || ! -x "$out/conv_bench" ]]; then
    echo "compare_conv.sh: --keep needs --out of an earlier run and --shapes" >&2
    exit 2
  fi
else
  if [[ -z "$out" ]]; then out="$(mktemp -d /tmp/compare_conv.XXXXXX)"; fi
  mkdir -p "$out"
  rm -f "$out"/gradflow_*.json "$out"/gradflow_stderr.log "$out"/torch.jsonl "$out"/*_verbose.log
  # A private copy: a rebuild of the shared build folder during the run must not change the
  # binary (and --keep measures again with the same one).
  cp "$bench" "$out/conv_bench"
fi
bench="$out/conv_bench"

# Both sides use libgomp; the same team size, and nothing else decides it.
export OMP_NUM_THREADS="$threads"
export GRADFLOW_BENCH_THREADS="$threads"
torch_bench=("$python" "$here/torch_conv_bench.py" --threads "$threads" --batch "$batch")
# PyTorch mallocs each output; above glibc's mmap threshold that is a fresh mapping (and page
# faults) per call. Raising the threshold compares kernels; the default run shows PyTorch as shipped.
retain_malloc="glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967295"

wait_for_load "$wait_load" 90

echo "== machine"
date -u '+%Y-%m-%d %H:%M UTC'
echo "nproc: $(nproc); $(lscpu | grep -m1 'Model name' | tr -s ' ')"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: $threads, batch: $batch, repeats: $repeats x >= ${min_time}s, out: $out"
"${torch_bench[@]}" --check-blas

"$bench" --list_shapes > "$out/shapes.tsv"
mapfile -t names < <(cut -f1 "$out/shapes.tsv" | tail -n +2)
if [[ -n "$only" ]]; then IFS=',' read -r -a names <<< "$only"; fi

# Which oneDNN implementation each side picks, from one untimed call of every case.
echo "== oneDNN implementations (ONEDNN_VERBOSE=1, one call per case)"
filter="/($(IFS='|'; echo "${names[*]}"))(/|\$)"
ONEDNN_VERBOSE=1 "$bench" --batch="$batch" --benchmark_filter="$filter" \
  --benchmark_min_time=0 >> "$out/gradflow_verbose.log" 2>&1
GLIBC_TUNABLES="$retain_malloc" ONEDNN_VERBOSE=1 "${torch_bench[@]}" --shapes "$out/shapes.tsv" --once \
  --only "$(IFS=','; echo "${names[*]}")" >> "$out/torch_verbose.log" 2>&1
echo "logged to $out/{gradflow,torch}_verbose.log"

echo "== timing ${#names[@]} shapes"
run_gradflow() {
  "$bench" --batch="$batch" --benchmark_filter="/$1(/|\$)" \
    --benchmark_min_time="$min_time" --benchmark_repetitions="$repeats" \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/gradflow_$1.json" --benchmark_out_format=json \
    > /dev/null 2>> "$out/gradflow_stderr.log"
}
run_torch() {
  GLIBC_TUNABLES="$retain_malloc" "${torch_bench[@]}" --shapes "$out/shapes.tsv" --only "$1" \
    --repeats "$repeats" --min-time "$min_time" --json >> "$out/torch.jsonl"
  "${torch_bench[@]}" --shapes "$out/shapes.tsv" --only "$1" --layouts channels_last \
    --repeats "$repeats" --min-time "$min_time" --json >> "$out/torch.jsonl"
}
# Other helpers build on this machine: start a shape only when it is quiet (wait_quiet), and
# measure it again (up to twice, 12 retries per run) if the other side was interrupted anyway.
retries_left=12
i=0
for name in "${names[@]}"; do
  for attempt in 1 2 3; do
    busy=$(wait_quiet)
    printf '  %-22s attempt %d, machine %3d%% busy before\n' "$name" "$attempt" "$busy"
    if (( (i + attempt) % 2 == 1 )); then run_gradflow "$name"; run_torch "$name"
    else run_torch "$name"; run_gradflow "$name"; fi
    if "$python" "$here/conv_table.py" --dir "$out" --quiet-check "$name"; then break; fi
    (( retries_left-- > 0 )) || break
  done
  i=$((i + 1))
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== gradflow (channels-last, CpuContext threads $threads) vs PyTorch $("$python" -c \
  'import torch; print(torch.__version__)') (faster of channels_last / contiguous)"
if (( keep )); then mapfile -t names < <(cut -f1 "$out/shapes.tsv" | tail -n +2); fi
"$python" "$here/conv_table.py" --dir "$out" --batch "$batch" \
  --only "$(IFS=','; echo "${names[*]}")" | tee "$out/table.txt"
