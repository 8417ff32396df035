#!/usr/bin/env bash
# Checks `runtime project` against real runs on this machine: traces one node, measures the Gloo
# allreduce between N local processes with `runtime bench-allreduce`, projects the iteration time
# of N nodes, runs N local nodes for real (`runtime --nodes N --summary-json`), and prints
# predicted against measured iteration time per node count (target: within 15%). See
# bench/README.md, "Scaling projection".
#
# Local nodes share this machine's cores: `runtime --nodes N` gives each node cores/N threads (at
# least 1), and Gloo's reduction and TCP copies run on those same cores. Both are modeled, not
# hidden: for each N the one-node trace is recorded with the threads a node gets at N, and the
# projection runs with `--host-cores CORES --nodes-per-host N --compute-threads THREADS`, so the
# N nodes' compute threads and their allreduces share the cores max-min fairly (4 single-threaded
# nodes on 2 cores compute at half speed; an allreduce's CPU time, `cpu_us_per_mb` measured by
# bench-allreduce, comes out of the compute it overlaps). bench-allreduce also times the
# allreduces while each of its N processes runs THREADS busy threads (--busy-threads), the load
# the N training nodes put on the cores, and fits the latency per round under it (the wake-up
# delay of a peer whose core is busy computing; latency_loaded_us) and the CPU per MB there
# (cpu_us_per_mb_loaded), which the projection charges while compute runs. The cpu-us/MB column
# is idle/loaded, alpha-us and loaded-us the latency per round idle and loaded. The table also shows what the model predicts without the host term
# (communication on cores of its own, oversubscription as --scale-compute), for comparison.
#
# Usage: bench/projection_validate.sh [--model NAME] [--image-size S] [--batch N] [--iters N]
#          [--warmup N] [--nodes LIST] [--build DIR] [--out DIR] [--wait-load LOAD]
#   --model NAME      a modelc zoo model [resnet18]; --image-size S: its input size [64]
#   --batch N         images per node per iteration [16]
#   --iters N         measured iterations per run [6]; --warmup N: iterations before them [3]
#   --nodes LIST      node counts besides 1 [2,4]
#   --wait-load LOAD  first wait (up to 10 min) for the 1-minute load average to fall below LOAD
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/quiet.sh
source "$here/quiet.sh"
build="$here/../build"
out=""
model=resnet18
image_size=64
batch=16
iters=6
warmup=3
nodes_list=2,4
wait_load=""

fail() { echo "projection_validate: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --image-size) image_size="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --nodes) nodes_list="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --wait-load) wait_load="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
  esac
done
for v in batch iters warmup image_size; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || fail "--${v//_/-} must be a positive integer, not '${!v}'"
done
[[ "$nodes_list" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || fail "--nodes must look like 2,4, not '$nodes_list'"
runtime="$build/runtime/runtime"
modelc="$build/models/modelc"
[[ -x "$runtime" && -x "$modelc" ]] || fail "build runtime and modelc first (looked in $build)"
"$runtime" --help | grep -q -- '--trace ' ||
  fail "this runtime has no --trace yet (issue 6): the one-node trace cannot be recorded"
[[ -n "$out" ]] || out="$(mktemp -d /tmp/projection-validate.XXXXXX)"
mkdir -p "$out/bin"
# Copies: a rebuild during the run must not swap the binaries under it.
cp "$runtime" "$modelc" "$out/bin/"
runtime="$out/bin/runtime"
modelc="$out/bin/modelc"

wait_for_load "$wait_load"
started="$(date -u '+%Y-%m-%d %H:%M UTC'), 1-minute load $(cut -d' ' -f1 /proc/loadavg)"

cores="$(nproc)"
"$modelc" "$model" -o "$out/model.fb" --image-size "$image_size" --classes 10 > /dev/null
common=(--graph "$out/model.fb" --data "synthetic:4096,$batch" --batch "$batch" --eval-every 0
        --log-every 0 --iters "$((warmup + iters))")

# The median of a summary's iteration_seconds after the warmup iterations.
measured_seconds() {
  python3 - "$1" "$warmup" <<'PY'
import json, statistics, sys
times = json.load(open(sys.argv[1]))["iteration_seconds"][int(sys.argv[2]):]
print(f"{statistics.median(times):.6f}")
PY
}
projected_seconds() {
  python3 - "$1" "$2" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1]))["projections"]:
    if p["nodes"] == int(sys.argv[2]):
        print(f'{p["iteration_seconds"]:.6f}')
PY
}

link_key() {
  awk -v key="$2" '$1 == key { print $2 }' "$1"
}

rows=()
for n in 1 ${nodes_list//,/ }; do
  threads=$(( cores / n )); (( threads >= 1 )) || threads=1
  # Without the host term: oversubscribed cores as slower compute, nothing else.
  scale="$(python3 -c "print(1 / max(1.0, $n * $threads / $cores))")"
  trace="$out/trace_threads$threads.json"
  if [[ ! -f "$trace" ]]; then
    echo "== one-node trace with $threads thread(s)" >&2
    "$runtime" "${common[@]}" --threads "$threads" --trace "$trace" \
      --trace-iters "$((warmup + 1)):$((warmup + iters))" > "$out/trace_threads$threads.log"
  fi
  link=(--link-gbps 1e6 --latency-us 0)  # one node: no network
  cpu=(--cpu-us-per-mb 0)
  cpu_us="-"
  alpha_us="-"
  loaded_us="-"
  if (( n > 1 )); then
    echo "== bench-allreduce between $n processes, idle and beside $threads busy thread(s) each" >&2
    "$runtime" bench-allreduce --nodes "$n" --sizes 256K,1M,4M,16M,32M --iters 20 \
      --busy-threads "$threads" --out "$out/link_$n.txt" > "$out/bench_allreduce_$n.log"
    link=(--link-file "$out/link_$n.txt")
    cpu=()
    cpu_us="$(printf '%.0f/%.0f' "$(link_key "$out/link_$n.txt" cpu_us_per_mb)" \
      "$(link_key "$out/link_$n.txt" cpu_us_per_mb_loaded)")"
    alpha_us="$(printf '%.0f' "$(link_key "$out/link_$n.txt" latency_us)")"
    loaded_us="$(printf '%.0f' "$(link_key "$out/link_$n.txt" latency_loaded_us)")"
  fi
  "$runtime" project --graph "$out/model.fb" --from "$trace" --nodes "$n" --devices-per-node 1 \
    --intra-node none "${link[@]}" --host-cores "$cores" --nodes-per-host "$n" \
    --compute-threads "$threads" "${cpu[@]}" --json "$out/projection_$n.json" \
    > "$out/projection_$n.txt"
  "$runtime" project --graph "$out/model.fb" --from "$trace" --nodes "$n" --devices-per-node 1 \
    --intra-node none "${link[@]}" --scale-compute "$scale" \
    --json "$out/projection_no_host_$n.json" > "$out/projection_no_host_$n.txt"
  echo "== $n node(s) for real" >&2
  extra=()
  (( n > 1 )) || extra=(--threads "$threads")
  "$runtime" "${common[@]}" --nodes "$n" "${extra[@]}" --summary-json "$out/run_$n.json" \
    > "$out/run_$n.log" 2>&1
  predicted="$(projected_seconds "$out/projection_$n.json" "$n")"
  no_host="$(projected_seconds "$out/projection_no_host_$n.json" "$n")"
  measured="$(measured_seconds "$out/run_$n.json")"
  rows+=("$n $threads $cpu_us $alpha_us $loaded_us $no_host $predicted $measured")
done

echo
echo "model $model ${image_size}x$image_size, batch $batch per node, $cores cores; started $started"
echo "files in $out; ended $(date -u '+%H:%M UTC')"
printf '%6s %8s %12s %9s %10s %16s %8s %13s %12s %8s\n' nodes threads cpu-us/MB alpha-us \
  loaded-us no-host-term-s error predicted-s measured-s error
worst=0
for row in "${rows[@]}"; do
  read -r n threads cpu_us alpha_us loaded_us no_host predicted measured <<< "$row"
  error="$(python3 -c "print(f'{100 * ($predicted - $measured) / $measured:+.1f}')")"
  no_host_error="$(python3 -c "print(f'{100 * ($no_host - $measured) / $measured:+.1f}')")"
  printf '%6s %8s %12s %9s %10s %16.3f %7s%% %13.3f %12.3f %7s%%\n' "$n" "$threads" "$cpu_us" \
    "$alpha_us" "$loaded_us" "$no_host" "$no_host_error" "$predicted" "$measured" "$error"
  worst="$(python3 -c "print(max($worst, abs($error)))")"
done
python3 -c "import sys; sys.exit(0 if $worst <= 15 else 1)" &&
  echo "all within 15%" || { echo "worst error ${worst}% exceeds 15%"; exit 1; }
