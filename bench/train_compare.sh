#!/usr/bin/env bash
# gradflow's training throughput and peak memory next to PyTorch's on the CPU, in one run:
# fmnist-cnn for one epoch of Fashion-MNIST at batch 128, and ResNet-50 on synthetic images at
# batches 8 and 32 (a few iterations). Per case the two sides run back to back (who goes first
# alternates, so that a drift in load does not favour one side), each under /usr/bin/time -v for
# its peak RSS; then one table. See bench/README.md, "Training throughput".
#
# Usage: bench/train_compare.sh [--build DIR] [--threads N] [--out DIR] [--wait-load LOAD]
#          [--cases fmnist,r50b8,r50b32 | none] [--breakdown]
#   --wait-load LOAD  first wait (up to 10 min) for the 1-minute load average to fall below LOAD
#   --breakdown       afterwards, run ResNet-50 at batch 32 with ONEDNN_VERBOSE=1 on both sides and
#                     sum one steady iteration's oneDNN time by primitive
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/quiet.sh
source "$here/quiet.sh"
build="$here/../build"
threads=2
out=""
wait_load=""
cases="fmnist,r50b8,r50b32"
breakdown=0
python=/usr/bin/python3
# gradflow's iterations per ResNet-50 case (the first one is not timed) and PyTorch's untimed +
# timed steps per layout. At batch 32 a step takes 3-20 s on this 2-core machine; PyTorch's first
# 2-3 are slow even with glibc keeping memory (as shipped, its page faults fade over more steps).
declare -A gradflow_iters=([8]=6 [32]=5)
declare -A torch_warmup=([8]=2 [32]=3)
declare -A torch_iters=([8]=4 [32]=4)

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --wait-load) wait_load="$2"; shift 2 ;;
    --cases) cases="$2"; shift 2 ;;
    --breakdown) breakdown=1; shift ;;
    -h|--help) usage ;;
    *) echo "train_compare.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
if [[ ! "$threads" =~ ^[1-9][0-9]*$ ]]; then
  echo "train_compare.sh: --threads must be a positive integer, not '$threads'" >&2
  exit 2
fi
[[ "$cases" == none ]] && cases=""
for case_name in ${cases//,/ }; do
  case "$case_name" in fmnist|r50b8|r50b32) ;;
    *) echo "train_compare.sh: unknown case '$case_name' in --cases (fmnist, r50b8, r50b32," \
         "or none)" >&2
       exit 2 ;;
  esac
done
for tool in runtime/runtime models/modelc; do
  if [[ ! -x "$build/$tool" ]]; then
    echo "train_compare.sh: no $build/$tool; build it:" \
      "cmake --build $build --target $(basename "$tool")" >&2
    exit 1
  fi
done
if [[ ! -x /usr/bin/time ]]; then
  echo "train_compare.sh: needs GNU time (/usr/bin/time): apt-get install time" >&2
  exit 1
fi

if [[ -z "$out" ]]; then out="$(mktemp -d /tmp/train_compare.XXXXXX)"; fi
mkdir -p "$out"
# Private copies: a rebuild of the shared build folder during the run must not change the binaries.
cp "$build/runtime/runtime" "$build/models/modelc" "$out/"
runtime="$out/runtime"
"$out/modelc" fmnist-cnn -o "$out/fmnist-cnn.fb" > /dev/null
"$out/modelc" resnet50 -o "$out/resnet50.fb" > /dev/null

# Both sides use libgomp: the same team size, and nothing else decides it.
export OMP_NUM_THREADS="$threads"
torch_bench=("$python" "$here/torch_train_bench.py" --threads "$threads")
# PyTorch takes each large tensor from malloc, and glibc serves blocks above its mmap threshold
# (at most 32 MiB; ResNet-50's first-stage activations are 100 MB at batch 32) with a fresh mmap,
# page-faulted in on first touch and unmapped when freed, and trims its heap often. That is PyTorch
# as shipped (the main column); each PyTorch run is repeated with glibc told to keep freed memory
# (the faster layout only, for ResNet-50), to show what the page faults cost (the "pt retain"
# column; on this VM a page fault is dear and their number varies from run to run).
retain_malloc="glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967295"

wait_for_load "$wait_load"

peak_rss_kb() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
json_field() {
  "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
# Median of the per-iteration img/s of a `--log-every 1` gradflow log, without the first iteration
# (primitive creation, first touch of the arena).
gradflow_median_rate() {
  grep -E '^epoch [0-9]+/[0-9]+  iter ' "$1" | tail -n +2 |
    sed -E 's/.*  ([0-9.]+) img\/s.*/\1/' | sort -g |
    awk '{ v[NR] = $1 }
         END {
           if (NR == 0) exit 1
           print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
         }'
}

echo "== machine"
date -u '+%Y-%m-%d %H:%M UTC'
echo "nproc: $(nproc); $(lscpu | grep -m1 'Model name' | tr -s ' ')"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: $threads, out: $out"

declare -A gf_rate gf_rss gf_top1 pt_rate pt_rss pt_top1 pt_note pt_retain_rate
order=0

run_fmnist() {
  local gf="$out/gradflow_fmnist" pt="$out/torch_fmnist"
  local gradflow_cmd=(/usr/bin/time -v -o "$gf.time" "$runtime" --graph "$out/fmnist-cnn.fb"
    --data fashion-mnist --batch 128 --epochs 1 --threads "$threads" --lr 0.05
    --lr-reference-batch 128 --warmup none --lr-milestones "" --weight-decay 0 --eval-every 0)
  run_torch_side() {  # as shipped, then with glibc keeping freed memory
    /usr/bin/time -v -o "$pt.time" "${torch_bench[@]}" --model fmnist-cnn --batch 128 --lr 0.05 \
      > "$pt.json" 2> "$pt.log"
    GLIBC_TUNABLES="$retain_malloc" /usr/bin/time -v -o "$pt.retain.time" "${torch_bench[@]}" \
      --model fmnist-cnn --batch 128 --lr 0.05 > "$pt.retain.json" 2> "$pt.retain.log"
  }
  echo "  fmnist-cnn: machine $(wait_quiet)% busy before"
  if (( order++ % 2 == 0 )); then
    "${gradflow_cmd[@]}" > "$gf.log" 2>&1; run_torch_side
  else
    run_torch_side; "${gradflow_cmd[@]}" > "$gf.log" 2>&1
  fi
  local done_line
  done_line="$(grep '^done: ' "$gf.log")"
  gf_rate[fmnist]="$(sed -E 's/.* s, ([0-9.]+) img\/s.*/\1/' <<< "$done_line")"
  gf_top1[fmnist]="$(sed -E 's/.*eval top-1 ([0-9.]+)%.*/\1/' <<< "$done_line")"
  gf_rss[fmnist]="$(peak_rss_kb "$gf.time")"
  pt_rate[fmnist]="$(json_field "$pt.json" images_per_second)"
  pt_top1[fmnist]="$(awk -v x="$(json_field "$pt.json" test_top1)" 'BEGIN { print 100 * x }')"
  pt_rss[fmnist]="$(peak_rss_kb "$pt.time")"
  pt_retain_rate[fmnist]="$(json_field "$pt.retain.json" images_per_second)"
  pt_note[fmnist]="contiguous"
}

run_resnet50() {
  local batch="$1" key="r50b$1" gf="$out/gradflow_r50_b$1" pt="$out/torch_r50_b$1"
  local gradflow_cmd=(/usr/bin/time -v -o "$gf.time" "$runtime" --graph "$out/resnet50.fb"
    --data "synthetic:4096,$batch" --batch "$batch" --iters "${gradflow_iters[$batch]}"
    --threads "$threads" --eval-every 0 --log-every 1)
  local best="" best_rate=0 rate notes=() layout
  run_torch() {  # $1: layout, $2: file suffix, then environment assignments
    local run_layout="$1" suffix="$2"; shift 2
    env "$@" /usr/bin/time -v -o "$pt.$suffix.time" "${torch_bench[@]}" --model resnet50 \
      --batch "$batch" --layout "$run_layout" --warmup "${torch_warmup[$batch]}" \
      --iters "${torch_iters[$batch]}" > "$pt.$suffix.json" 2> "$pt.$suffix.log"
  }
  # PyTorch as shipped in both layouts, then the faster one again with glibc keeping freed memory.
  run_torch_side() {
    for layout in channels_last contiguous; do
      run_torch "$layout" "$layout"
      rate="$(json_field "$pt.$layout.json" images_per_second)"
      notes+=("$(printf '%s %.2f' "${layout/channels_last/cl}" "$rate")")
      if awk -v a="$rate" -v b="$best_rate" 'BEGIN { exit !(a > b) }'; then
        best="$layout"; best_rate="$rate"
      fi
    done
    run_torch "$best" retain "GLIBC_TUNABLES=$retain_malloc"
  }
  echo "  resnet50 batch $batch: machine $(wait_quiet)% busy before"
  if (( order++ % 2 == 0 )); then
    "${gradflow_cmd[@]}" > "$gf.log" 2>&1; run_torch_side
  else
    run_torch_side; "${gradflow_cmd[@]}" > "$gf.log" 2>&1
  fi
  gf_rate[$key]="$(gradflow_median_rate "$gf.log")"
  gf_rss[$key]="$(peak_rss_kb "$gf.time")"
  gf_top1[$key]="-"
  pt_rate[$key]="$best_rate"
  pt_rss[$key]="$(peak_rss_kb "$pt.$best.time")"
  pt_retain_rate[$key]="$(json_field "$pt.retain.json" images_per_second)"
  pt_top1[$key]="-"
  pt_note[$key]="${best}; $(IFS=,; echo "${notes[*]}")"
}

# One row of the table: the case's label, then its key in the result arrays.
print_row() {
  awk -v c="$1" -v gr="${gf_rate[$2]}" -v pr="${pt_rate[$2]}" -v rr="${pt_retain_rate[$2]}" \
      -v gm="${gf_rss[$2]}" -v pm="${pt_rss[$2]}" -v ga="${gf_top1[$2]}" -v pa="${pt_top1[$2]}" \
      -v note="${pt_note[$2]}" '
    function pct(x) { return x == "-" ? "-" : sprintf("%.2f%%", x) }
    BEGIN {
      retain = rr == "-" ? "-" : sprintf("%.2f", rr)
      retain_ratio = rr == "-" ? "-" : sprintf("%.2fx", gr / rr)
      printf "%-15s %9.2f %9.2f %5.2fx  %9.0f %9.0f %5.2fx  %8s %8s  %10s %6s  %s\n", c, gr, pr,
             gr / pr, gm / 1024, pm / 1024, gm / pm, pct(ga), pct(pa), retain, retain_ratio, note
    }'
}

if [[ -n "$cases" ]]; then
  echo "== timing"
  for case_name in ${cases//,/ }; do
    case "$case_name" in
      fmnist) run_fmnist ;;
      r50b8) run_resnet50 8 ;;
      r50b32) run_resnet50 32 ;;
    esac
  done
  echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  torch_jsons=("$out"/torch_*.json)
  first_json="${torch_jsons[0]}"
  echo "PyTorch $(json_field "$first_json" torch), $(json_field "$first_json" blas_info)," \
    "loaded $(json_field "$first_json" blas_loaded)"

  echo "== gradflow vs PyTorch, $threads threads" \
    "(img/s: training loop only; ratio = gradflow / PyTorch)"
  {
    printf '%-15s %9s %9s %6s  %9s %9s %6s  %8s %8s  %10s %6s  %s\n' case "gf img/s" "pt img/s" \
      ratio "gf RSS MB" "pt RSS MB" ratio "gf top1" "pt top1" "pt retain" ratio \
      "PyTorch layout (img/s)"
    for case_name in ${cases//,/ }; do
      case "$case_name" in
        fmnist) print_row "fmnist-cnn b128" fmnist ;;
        r50b8) print_row "resnet50 b8" r50b8 ;;
        r50b32) print_row "resnet50 b32" r50b32 ;;
      esac
    done
  } | tee "$out/table.txt"
fi

if (( breakdown )); then
  echo "== where a ResNet-50 batch-32 iteration goes (ONEDNN_VERBOSE=1; ms per primitive)"
  # Everything between two progress lines is one iteration.
  ONEDNN_VERBOSE=1 "$runtime" --graph "$out/resnet50.fb" --data synthetic:4096,32 --batch 32 \
    --iters 2 --threads "$threads" --eval-every 0 --log-every 1 > "$out/gradflow_verbose.log" 2>&1
  GLIBC_TUNABLES="$retain_malloc" ONEDNN_VERBOSE=1 stdbuf -oL "${torch_bench[@]}" --model resnet50 \
    --batch 32 --layout channels_last --warmup 2 --iters 1 > "$out/torch_verbose.log" 2>&1
  # $1: log, $2: regex of the line that ends the iteration before, $3: regex of the line ending it.
  summarize() {
    awk -F, -v start="$2" -v stop="$3" '
      $0 ~ start { on = 1; next }
      on && $0 ~ stop { step_line = $0; on = 0 }
      on && $1 == "onednn_verbose" && $2 == "exec" {
        key = $4 " " $6 " " $5; ms[key] += $NF; n[key]++; total += $NF }
      END {
        for (k in ms) printf "  %9.1f ms %5d calls  %s\n", ms[k], n[k], k | "sort -rn"
        close("sort -rn")
        step_ms = 0
        if (match(step_line, /[0-9.]+ img\/s/)) {
          step_ms = 32000 / substr(step_line, RSTART, RLENGTH - 6)
        } else if (match(step_line, /[0-9.]+ s$/)) {
          step_ms = 1000 * substr(step_line, RSTART, RLENGTH - 2)
        }
        printf "  %9.1f ms in oneDNN, %.1f ms outside it, of a %.1f ms step (%s)\n", total,
               step_ms - total, step_ms, step_line
      }' "$1"
  }
  echo "-- gradflow (iteration 2)"
  summarize "$out/gradflow_verbose.log" '  iter 1/2 ' '  iter 2/2 ' | head -25
  echo "-- PyTorch channels_last, glibc keeping freed memory (step 3: its step 2 is not yet steady)"
  summarize "$out/torch_verbose.log" 'step 2: .*\(warmup\)' 'step 3: ' | head -25
fi
echo "logs in $out"
