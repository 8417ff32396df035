#!/usr/bin/env bash
# Data-parallel scaling on one machine, gradflow against PyTorch DDP (gloo), in one run: ResNet-50
# on synthetic images, per-process batch 16, 1 thread per process, trained by 1 process and by 2
# (gradflow: `runtime --nodes 1|2`, which starts its local nodes itself; PyTorch: plain, then DDP
# with 2 ranks on 127.0.0.1). Per process count the two frameworks run back to back, who goes first
# alternating; PyTorch runs as shipped and again with glibc keeping freed memory (as
# train_compare.sh does). Then one table: per-node and total images/s, scaling efficiency,
# communication hidden behind backward, peak RSS per process. See bench/README.md, "Data-parallel".
#
# Usage: bench/ddp_compare.sh [--iters N] [--warmup N] [--threads N] [--batch N] [--model NAME]
#          [--skip-torch] [--skip-gradflow] [--torch-malloc shipped,retain] [--no-comm-timing]
#          [--build DIR] [--out DIR] [--wait-load LOAD]
#   --iters N          timed iterations per run [5]; --warmup N: untimed ones before them [3]
#   --threads N        compute threads per process [1]; --batch N: images per process [16]
#   --model NAME       resnet18|34|50|101|152 (modelc's and torchvision's) [resnet50]
#   --torch-malloc     which PyTorch variants to run: shipped (default malloc), retain (glibc
#                      keeping freed memory) [shipped,retain]
#   --no-comm-timing   PyTorch DDP without the timing comm hook (no "hidden" figure for it)
#   --wait-load LOAD   first wait (up to 10 min) for the 1-minute load average to fall below LOAD
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/quiet.sh
source "$here/quiet.sh"
build="$here/../build"
# PyTorch's first steps are slow (as shipped: page faults; 14.6, 17.4, 7.2, 5.1, 4.3, 4.2 s here
# with 1 process, and 9.9, 4.4, 3.9, 3.4, 2.9, 2.9 s with glibc keeping memory); gradflow's second
# iteration is already steady. 3 + 5 iterations of each of the 6 runs: 4.3 min here.
iters=5
warmup=3
threads=1
batch=16
model=resnet50
skip_torch=0
skip_gradflow=0
torch_mallocs="shipped,retain"
comm_timing=--comm-timing
out=""
wait_load=""
python=/usr/bin/python3
# See train_compare.sh: as shipped, glibc maps (and page-faults) fresh memory for every large
# PyTorch activation; this keeps freed memory for reuse, as gradflow's planned arena does.
retain_malloc="glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967295"

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
fail() { echo "ddp_compare.sh: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --iters) iters="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --skip-torch) skip_torch=1; shift ;;
    --skip-gradflow) skip_gradflow=1; shift ;;
    --torch-malloc) torch_mallocs="$2"; shift 2 ;;
    --no-comm-timing) comm_timing=--no-comm-timing; shift ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --wait-load) wait_load="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "ddp_compare.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for flag in iters threads batch; do
  [[ "${!flag}" =~ ^[1-9][0-9]*$ ]] || fail "--$flag must be a positive integer, not '${!flag}'"
done
[[ "$warmup" =~ ^[0-9]+$ ]] || fail "--warmup must be a non-negative integer, not '$warmup'"
[[ "$model" =~ ^resnet(18|34|50|101|152)$ ]] ||
  fail "--model must be resnet18, resnet34, resnet50, resnet101 or resnet152, not '$model'"
for variant in ${torch_mallocs//,/ }; do
  [[ "$variant" == shipped || "$variant" == retain ]] ||
    fail "unknown --torch-malloc variant '$variant' (shipped, retain)"
done
(( skip_torch && skip_gradflow )) && fail "--skip-torch and --skip-gradflow leave nothing to run"
if (( !skip_gradflow )); then
  for tool in runtime/runtime models/modelc; do
    [[ -x "$build/$tool" ]] ||
      fail "no $build/$tool; build it: cmake --build $build --target $(basename "$tool")"
  done
  "$build/runtime/runtime" --help 2>&1 | grep -q -- '--summary-json' ||
    fail "$build/runtime/runtime has no --summary-json flag yet (rebuild it, or --skip-gradflow)"
fi
[[ -x /usr/bin/time ]] || fail "needs GNU time (/usr/bin/time): apt-get install time"

if [[ -z "$out" ]]; then out="$(mktemp -d /tmp/ddp_compare.XXXXXX)"; fi
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.time "$out"/*.log
if (( !skip_gradflow )); then
  # Private copies: a rebuild of the shared build folder during the run must not change them.
  cp "$build/runtime/runtime" "$build/models/modelc" "$out/"
  "$out/modelc" "$model" -o "$out/$model.fb" > /dev/null
fi


wait_for_load "$wait_load"
# Prints a command as it can be pasted back into a shell.
show() {
  local word line=""
  for word in "$@"; do
    [[ "$word" =~ ^[A-Za-z0-9_./:=,+-]+$ ]] || word="'${word//\'/\'\\\'\'}'"
    line+=" $word"
  done
  echo "  \$$line"
}
free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1])'
}

# gradflow, $1 nodes: node 0 writes the summary JSON; /usr/bin/time reports the largest RSS of the
# processes it waited for (the supervisor and the nodes it reaps), i.e. the peak per process.
run_gradflow() {
  local nodes="$1" name="$out/gradflow_$1"
  # Synthetic data with as many eval images as one batch: the run always ends with an evaluation,
  # outside the timed iterations; 50000 (the default) would take an hour here.
  local cmd=(/usr/bin/time -v -o "$name.time" "$out/runtime" --graph "$out/$model.fb"
    --data "synthetic:4096,$batch" --batch "$batch" --threads "$threads"
    --iters "$((warmup + iters))" --eval-every 0 --log-every 1 --summary-json "$name.json"
    --nodes "$nodes")
  echo "gradflow, $nodes node(s): machine $(wait_quiet)% busy before"
  show "${cmd[@]}"
  if ! "${cmd[@]}" > "$name.log" 2>&1; then
    tail -n 20 "$name.log" >&2
    fail "gradflow --nodes $nodes failed (log: $name.log)"
  fi
  grep -E 'iter [0-9]+/[0-9]+ ' "$name.log" | sed 's/^/    /' || true
}

# PyTorch, $1 processes (1: plain; more: DDP), malloc variant $2. Every rank under its own
# /usr/bin/time; if one fails, the others are stopped at once instead of waiting out gloo's timeout.
run_torch() {
  local procs="$1" variant="$2" name="$out/torch_$1_$2" port="" rank pid failed=0 done_pid
  local env_prefix=()
  [[ "$variant" == retain ]] && env_prefix=(env "GLIBC_TUNABLES=$retain_malloc")
  (( procs > 1 )) && port="$(free_port)"
  echo "PyTorch, $procs process(es), malloc $variant: machine $(wait_quiet)% busy before"
  declare -A rank_of=()
  for (( rank = 0; rank < procs; rank++ )); do
    local cmd=("${env_prefix[@]}" /usr/bin/time -v -o "$name.rank$rank.time" "$python"
      "$here/torch_ddp_bench.py" --model "$model" --batch "$batch" --threads "$threads"
      --warmup "$warmup" --iters "$iters" --world-size "$procs" --rank "$rank")
    (( procs > 1 )) && cmd+=(--port "$port" "$comm_timing")
    show "${cmd[@]}"
    "${cmd[@]}" > "$name.rank$rank.json" 2> "$name.rank$rank.log" &
    rank_of[$!]=$rank
  done
  while (( ${#rank_of[@]} > 0 )); do
    if wait -n -p done_pid "${!rank_of[@]}"; then
      unset "rank_of[$done_pid]"
      continue
    fi
    tail -n 20 "$name.rank${rank_of[$done_pid]}.log" >&2
    unset "rank_of[$done_pid]"
    failed=1
    for pid in "${!rank_of[@]}"; do  # /usr/bin/time and the rank it runs
      kill $(pgrep -P "$pid") "$pid" 2> /dev/null || true
    done
  done
  (( failed )) && fail "PyTorch with $procs process(es) ($variant) failed (logs: $name.rank*.log)"
  grep -h 'step ' "$name".rank*.log | sed 's/^/    /' || true
}

run_torch_variants() {
  local variant
  for variant in ${torch_mallocs//,/ }; do run_torch "$1" "$variant"; done
}

echo "== machine"
date -u '+%Y-%m-%d %H:%M UTC'
echo "cores online: $(getconf _NPROCESSORS_ONLN); $(lscpu | grep -m1 'Model name' | tr -s ' ')"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model $model, batch $batch per process, $threads thread(s) per process," \
  "$warmup warm-up + $iters timed iterations; out: $out"

# Both sides use libgomp: the same team size, and nothing else decides it.
export OMP_NUM_THREADS="$threads"

echo "== timing"
order=0
for procs in 1 2; do
  if (( order++ % 2 == 0 )); then
    (( skip_gradflow )) || run_gradflow "$procs"
    (( skip_torch )) || run_torch_variants "$procs"
  else
    (( skip_torch )) || run_torch_variants "$procs"
    (( skip_gradflow )) || run_gradflow "$procs"
  fi
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== $model, batch $batch per process, $threads thread(s) per process"
"$python" - "$out" "$warmup" "$iters" "$batch" "$torch_mallocs" <<'EOF' | tee "$out/table.txt"
import glob, json, os, statistics, sys

out, warmup, iters, batch, mallocs = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5].split(",")


def fail(message):
    sys.exit(f"ddp_compare.sh: {message}")


def peak_rss_mb(time_file):
    with open(time_file) as f:
        for line in f:
            if "Maximum resident set size" in line:
                return int(line.rsplit(":", 1)[1]) / 1024
    fail(f"{time_file}: no 'Maximum resident set size' line")


def gradflow(nodes):
    path = f"{out}/gradflow_{nodes}.json"
    if not os.path.exists(path):
        return None
    with open(path) as f:
        s = json.load(f)
    need = ("nodes", "batch_per_node", "iterations", "iteration_seconds", "compute_seconds",
            "communication_seconds", "exposed_communication_seconds", "buckets", "gradient_bytes")
    missing = [key for key in need if key not in s]
    if missing:
        fail(f"{path}: no {', '.join(missing)}")
    if (s["nodes"], s["batch_per_node"]) != (nodes, batch):
        fail(f"{path}: nodes {s['nodes']}, batch {s['batch_per_node']}; ran {nodes}, {batch}")
    times = s["iteration_seconds"]
    if s["iterations"] != warmup + iters or len(times) != warmup + iters:
        fail(f"{path}: {s['iterations']} iterations, {len(times)} times; ran {warmup + iters}")
    per_node = batch / statistics.median(times[warmup:])
    comm, exposed = s["communication_seconds"], s["exposed_communication_seconds"]
    talks = nodes > 1 and comm > 0  # one node's allreduces are no-ops taking microseconds
    return {"per_node": per_node, "total": nodes * per_node,
            "hidden": 1 - exposed / comm if talks else None,
            "comm": f"{comm:.2f}, {exposed:.2f}, {s['buckets']}" if talks else "-",
            "rss": peak_rss_mb(f"{out}/gradflow_{nodes}.time")}


def torch(procs, variant):
    path = f"{out}/torch_{procs}_{variant}.rank0.json"
    if not os.path.exists(path):
        return None
    with open(path) as f:
        r = json.load(f)
    comm = r.get("communication_seconds")
    hidden, ranks = None, ""
    if comm:
        hidden = 1 - r["exposed_communication_seconds"] / comm
        # Rank 0's figure is the table's (gradflow's is node 0's); a rank that computes faster
        # than its peer waits for it at the end of backward, and that wait counts as exposed.
        ranks = "; hidden by rank " + ", ".join(
            f"{100 * (1 - rank['exposed'] / rank['communication']):.0f}%" for rank in r["ranks"])
    rss = max(peak_rss_mb(t) for t in glob.glob(f"{out}/torch_{procs}_{variant}.rank*.time"))
    return {"per_node": r["images_per_second_per_process"], "total": r["images_per_second"],
            "hidden": hidden, "rss": rss,
            "comm": (f"{comm:.2f}, {r['exposed_communication_seconds']:.2f}, {r['buckets']}{ranks}"
                     if comm else "-")}


rows = [("gradflow 1 node", gradflow(1), None), ("gradflow 2 nodes", gradflow(2), "gf")]
for variant in mallocs:
    note = "" if variant == "shipped" else " (glibc keeps memory)"
    rows += [(f"PyTorch 1 proc{note}", torch(1, variant), None),
             (f"PyTorch DDP 2 procs{note}", torch(2, variant), variant)]
base = {"gf": gradflow(1), **{v: torch(1, v) for v in mallocs}}
efficiency = {}
print(f"{'':41} {'img/s':>8} {'img/s':>8} {'scaling':>8} {'comm':>7} {'peak RSS':>9}  "
      "allreduce s,")
print(f"{'':41} {'per node':>8} {'total':>8} {'effic.':>8} {'hidden':>7} {'MB/proc':>9}  "
      "exposed s, buckets")
for label, r, key in rows:
    if r is None:
        continue
    eff = "-"
    if key and base[key]:
        efficiency[key] = r["total"] / (2 * base[key]["total"])
        eff = f"{100 * efficiency[key]:.1f}%"
    hidden = "n/a" if r["hidden"] is None else f"{100 * r['hidden']:.1f}%"
    if key is None:
        hidden = "-"
    print(f"{label:41} {r['per_node']:8.2f} {r['total']:8.2f} {eff:>8} {hidden:>7} "
          f"{r['rss']:9.0f}  {r['comm']}")

if gradflow(1) or gradflow(2):
    print("ratios (gradflow / PyTorch):")
for variant in mallocs:
    note = "as shipped" if variant == "shipped" else "glibc keeps memory"
    if "gf" in efficiency and variant in efficiency:
        print(f"  scaling efficiency, vs DDP {note}: {efficiency['gf'] / efficiency[variant]:.3f}")
    for procs, gf in ((1, gradflow(1)), (2, gradflow(2))):
        pt = torch(procs, variant)
        if gf and pt:
            print(f"  per-node img/s at {procs} node(s), vs PyTorch {note}: "
                  f"{gf['per_node'] / pt['per_node']:.3f}")
print("(img/s: from the median iteration of the timed ones (PyTorch DDP: per step, the slower\n"
      " rank); efficiency = 2-process total / (2 x 1-process total); hidden = 1 - exposed / all\n"
      " allreduce time, node/rank 0's: gradflow's summary counts the whole run, warm-up included,\n"
      " PyTorch's comm hook the timed steps; RSS: the largest process, from /usr/bin/time -v)")
EOF
echo "logs and JSON in $out"
