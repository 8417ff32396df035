#!/usr/bin/env bash
# The GPU check (issue 7), in two halves because the device machine has nvcc, cmake, ninja and
# PyTorch but none of Debian's -dev libraries and no network:
#
#   tools/gpu_check.sh pack   HERE (the build machine): builds the CUDA test binaries and the
#                             runtime, and packs them with the non-CUDA shared libraries they load
#                             (ldd) into gpu_bundle/bundle.tar.xz (git-ignored; small enough to
#                             travel with the working tree: name gpu_bundle in the run's carry).
#   tools/gpu_check.sh run    ON THE DEVICE: unpacks the bundle, points LD_LIBRARY_PATH at it and
#                             at the cuDNN / NCCL / cuBLAS libraries inside the device's PyTorch,
#                             runs every GPU test, measures PyTorch's torchvision ResNet-50
#                             training images/s (batch 32/64/128, channels-last, TF32 on and off),
#                             runs gradflow's own ResNet-50 training (`runtime --device cuda`,
#                             TF32, NHWC; and NCHW at batch 32) with a device-timed trace of the first,
#                             checks in a 2-node trace that allreduces run while backward ops
#                             do (NCCL with 2 GPUs, host-staged Gloo with 1), and prints one
#                             table last. Bounded to 8 minutes; writes
#                             the table and logs to $OUT when set.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE_DIR="$ROOT/gpu_bundle"
BUNDLE="$BUNDLE_DIR/bundle.tar.xz"
GPU_TESTS=(cuda_device_test cuda_runtime_test cuda_sgd_test cuda_kernel_harness_test
           nccl_collectives_test cuda_training_test)

die() { echo "gpu_check: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# pack (build machine)

# Libraries the device machine has itself (glibc), or must take from its own driver and PyTorch
# (too large to carry: cuDNN alone is ~1 GB).
is_excluded_lib() {
  case "$(basename "$1")" in
    linux-vdso.so*|ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*) return 0 ;;
    libcuda.so*|libcudnn*|libnccl*|libcublas*|libnvidia*) return 0 ;;
  esac
  return 1
}

pack() {
  local build="${BUILD_DIR:-$ROOT/build}"
  [[ -f "$build/CMakeCache.txt" ]] || die "no configured build in $build (run tools/setup.sh and tools/test.sh first)"
  grep -q '^GRADFLOW_CUDA:STRING=OFF' "$build/CMakeCache.txt" && die "$build is configured with GRADFLOW_CUDA=OFF"
  flock /tmp/gradflow-build.lock cmake --build "$build" -j2 --target "${GPU_TESTS[@]}" runtime modelc \
    || die "build failed"
  local stage
  stage="$(mktemp -d)"
  mkdir -p "$stage/bin" "$stage/lib"
  local binaries=()
  for t in "${GPU_TESTS[@]}"; do binaries+=("$build/tests/cuda/$t"); done
  binaries+=("$build/runtime/runtime" "$build/models/modelc")
  for b in "${binaries[@]}"; do
    [[ -x "$b" ]] || die "missing $b"
    cp "$b" "$stage/bin/"
    strip --strip-debug "$stage/bin/$(basename "$b")"
    # "libfoo.so.1 => /path/libfoo.so.1 (0x...)"; unresolved ones show "not found".
    while read -r name arrow path _; do
      [[ "$arrow" == "=>" ]] || continue
      [[ "$path" == "not" ]] && die "$b needs $name, which is not found here"
      is_excluded_lib "$name" && continue
      [[ -f "$stage/lib/$name" ]] || { cp -L "$path" "$stage/lib/$name"; strip --strip-debug "$stage/lib/$name" 2>/dev/null; }
    done < <(ldd "$b")
  done
  git -C "$ROOT" rev-parse HEAD > "$stage/COMMIT" 2>/dev/null || echo unknown > "$stage/COMMIT"
  mkdir -p "$BUNDLE_DIR"
  tar -C "$stage" -cJf "$BUNDLE" . || die "tar failed"
  rm -rf "$stage"
  local size
  size=$(du -m "$BUNDLE" | cut -f1)
  echo "gpu_check: packed $(tar -tJf "$BUNDLE" | grep -c -v '/$') files into $BUNDLE (${size} MB)"
  (( size < 56 )) || die "$BUNDLE is ${size} MB: too large to travel (64 MiB with the working tree)"
  echo "gpu_check: on the device: tools/gpu_check.sh run   (carry: gpu_bundle)"
}

# ---------------------------------------------------------------------------------------------
# run (device machine)

declare -a ROWS=()        # "step|result|detail"
row() { ROWS+=("$1|$2|$3"); }

elapsed() { echo $(( $(date +%s) - START )); }

# Seconds left of the 8-minute budget, minus a margin for the table.
left() { echo $(( 470 - $(elapsed) )); }

nvidia_lib_dirs() {
  python3 - <<'EOF' 2>/dev/null
import os, sys
dirs = set()
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
try:
    import torch
    roots.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception:
    pass
for root in roots:
    for d, _, files in os.walk(root):
        if any(".so" in f for f in files):
            dirs.add(d)
print(":".join(sorted(dirs)))
EOF
}

run_gtest() {
  local name="$1" budget="$2" log="$LOGS/$1.log"
  if (( budget < 10 )); then row "$name" "NOT RUN" "out of time"; return; fi
  timeout "$budget" "$WORK/bin/$name" --gtest_color=no >"$log" 2>&1
  local rc=$?
  local passed skipped failed
  # Per-test lines end with the time taken; gtest's summary repeats the names without it.
  passed=$(grep -cE '^\[       OK \] .*\([0-9]+ ms\)$' "$log")
  skipped=$(grep -cE '^\[  SKIPPED \] .*\([0-9]+ ms\)$' "$log")
  failed=$(grep -cE '^\[  FAILED  \] .*\([0-9]+ ms\)$' "$log")
  if (( rc == 124 )); then
    row "$name" "TIMEOUT" "after ${budget}s; $passed passed before"
  elif (( rc == 0 )); then
    row "$name" "PASS" "$passed passed, $skipped skipped"
  else
    row "$name" "FAIL" "$passed passed, $failed failed, $skipped skipped (rc $rc; see $name.log)"
    grep '^\[  FAILED  \]' "$log" | head -5 | sed 's/^/    /'
  fi
}

torch_bench() {
  # One process per configuration keeps cudnn.benchmark caches and memory peaks separate.
  local batch="$1" tf32="$2"
  timeout 120 python3 - "$batch" "$tf32" <<'EOF'
import sys, time, torch, torchvision
batch, tf32 = int(sys.argv[1]), sys.argv[2] == "1"
torch.backends.cuda.matmul.allow_tf32 = tf32
torch.backends.cudnn.allow_tf32 = tf32
torch.backends.cudnn.benchmark = True
dev = torch.device("cuda")
model = torchvision.models.resnet50().to(dev).to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
x = torch.randn(batch, 3, 224, 224, device=dev).to(memory_format=torch.channels_last)
y = torch.randint(0, 1000, (batch,), device=dev)
loss_fn = torch.nn.CrossEntropyLoss()
def step():
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
for _ in range(8):
    step()
torch.cuda.synchronize()
torch.cuda.reset_peak_memory_stats()
iters = 20
t0 = time.perf_counter()
for _ in range(iters):
    step()
torch.cuda.synchronize()
dt = time.perf_counter() - t0
print(f"RESULT {batch * iters / dt:.1f} {torch.cuda.max_memory_allocated() / 2**20:.0f}")
EOF
}

run_all() {
  START=$(date +%s)
  OUTDIR="${OUT:-$ROOT/gpu_check_out}"
  mkdir -p "$OUTDIR"
  LOGS="$OUTDIR"
  WORK="$(mktemp -d)"
  [[ -f "$BUNDLE" ]] || die "no $BUNDLE: run 'tools/gpu_check.sh pack' on the build machine and carry gpu_bundle"
  tar -C "$WORK" -xJf "$BUNDLE" || die "cannot unpack $BUNDLE"
  local nvlibs
  nvlibs="$(nvidia_lib_dirs)"
  export LD_LIBRARY_PATH="$WORK/lib${nvlibs:+:$nvlibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export GRADFLOW_TEST_TMPDIR="$WORK/tmp"
  mkdir -p "$GRADFLOW_TEST_TMPDIR"

  local card driver
  card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  echo "gpu_check: $(date -u +%F) on ${card:-unknown GPU} (driver ${driver:-?}), commit $(cat "$WORK/COMMIT")"
  # Missing libraries show up here first, with their names, rather than as a crash per test.
  if ldd "$WORK/bin/cuda_runtime_test" | grep 'not found'; then
    row "libraries" "FAIL" "unresolved: $(ldd "$WORK/bin/cuda_runtime_test" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')"
  fi

  # 1. Every GPU test (the op harness on CUDA against the CPU kernels among them).
  run_gtest cuda_device_test 30
  # A GPU that nvidia-smi sees but CUDA does not would turn every check below into a skip.
  if [[ -n "$card" ]] && grep -q 'no GPU on this machine' "$LOGS/cuda_device_test.log"; then
    row "GPU visible to CUDA" "FAIL" "nvidia-smi shows $card but the tests found no GPU"
  fi
  run_gtest cuda_runtime_test 60
  run_gtest cuda_sgd_test 30
  run_gtest nccl_collectives_test 60
  run_gtest cuda_training_test 90
  local harness_budget=$(( $(left) - 180 ))
  (( harness_budget > 240 )) && harness_budget=240
  run_gtest cuda_kernel_harness_test "$harness_budget"

  # 2. PyTorch ResNet-50 training, channels-last, TF32 on and off.
  declare -A TORCH=()
  for batch in 32 64 128; do
    for tf32 in 1 0; do
      if (( $(left) < 60 )); then TORCH[$batch,$tf32]="not run (time)"; continue; fi
      local out
      out=$(torch_bench "$batch" "$tf32" 2>"$LOGS/torch_b${batch}_tf32_${tf32}.log" | grep '^RESULT')
      if [[ -n "$out" ]]; then
        TORCH[$batch,$tf32]="$(echo "$out" | awk '{print $2 " img/s, " $3 " MiB"}')"
      else
        TORCH[$batch,$tf32]="failed (see torch_b${batch}_tf32_${tf32}.log)"
      fi
    done
  done

  # 3. gradflow's own ResNet-50 training on the GPU (TF32, as PyTorch's first column). Images/s
  #    are steady state: the median iteration after the first 10 (cuDNN's algorithm searches
  #    and the allocator's first mallocs happen there), from --summary-json.
  declare -A OURS=()
  "$WORK/bin/modelc" resnet50 -o "$WORK/resnet50.fb" >"$LOGS/modelc.log" 2>&1
  # "32nchw": batch 32 with activations NCHW (--no-channels-last), against the NHWC default.
  for run in 32 64 128 32nchw; do
    local batch=${run%nchw}
    if (( $(left) < 40 )); then OURS[$run]="not run (time)"; continue; fi
    local log="$LOGS/gradflow_b${run}.log" json="$LOGS/gradflow_b${run}.json" extra=()
    [[ $run == 32 ]] && extra=(--trace "$OUTDIR/trace_b32.json" --trace-iters 25:30)
    [[ $run == *nchw ]] && extra=(--no-channels-last)
    timeout 120 "$WORK/bin/runtime" --graph "$WORK/resnet50.fb" --device cuda --data synthetic \
      --batch "$batch" --iters 30 --log-every 1 --eval-every 0 --summary-json "$json" \
      "${extra[@]}" >"$log" 2>&1
    local rc=$?
    if (( rc != 0 )); then
      OURS[$run]="failed rc $rc (gradflow_b${run}.log)"
      [[ $run == 32 ]] && row "resnet50 loss falls" "FAIL" "run failed (gradflow_b32.log)"
      continue
    fi
    local ips mib first last
    ips=$(python3 -c "import json,statistics,sys; d=json.load(open(sys.argv[1])); t=d['iteration_seconds'][10:]; print(f'{int(sys.argv[2])/statistics.median(t):.1f}')" "$json" "$batch" 2>/dev/null)
    mib=$(grep -oE 'device memory: peak [0-9]+ MiB' "$log" | grep -oE '[0-9]+ MiB')
    OURS[$run]="${ips:-?} img/s, ${mib:-? MiB}"
    if [[ $run == 32 ]]; then
      first=$(grep -oE 'iter 1/30 +loss [0-9.]+' "$log" | grep -oE '[0-9.]+$')
      last=$(grep -oE 'iter 30/30 +loss [0-9.]+' "$log" | grep -oE '[0-9.]+$')
      if [[ -n "$first" && -n "$last" ]] && awk "BEGIN{exit !($last < $first)}"; then
        row "resnet50 loss falls" "PASS" "loss $first -> $last over 30 iterations"
      else
        row "resnet50 loss falls" "FAIL" "loss ${first:-?} -> ${last:-?} (gradflow_b32.log)"
      fi
      # Device-timed: the ops sit on the GPU stream's own track with CUDA-event times.
      if [[ -f "$OUTDIR/trace_b32.json" ]] &&
         "$WORK/bin/runtime" trace-summary "$OUTDIR/trace_b32.json" >"$LOGS/trace_summary.txt" 2>&1 &&
         grep -q '"name":"GPU compute stream"' "$OUTDIR/trace_b32.json"; then
        row "trace (batch 32)" "PASS" "trace_b32.json (device times), summary in trace_summary.txt"
      else
        row "trace (batch 32)" "FAIL" "no readable device-timed trace (trace_summary.txt)"
      fi
    fi
  done

  # 4. Allreduces running while backward computes, from a 2-node trace: NCCL lanes (device times)
  #    with two GPUs; with one, the two node processes share it and reduce host-staged over Gloo.
  if (( $(left) > 90 )); then
    local gpus collectives=gloo lanes_kind=host line overlapped
    gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
    if (( gpus >= 2 )); then collectives=nccl; lanes_kind=GPU; fi
    timeout 150 "$WORK/bin/runtime" --graph "$WORK/resnet50.fb" --device cuda --nodes 2 \
      --gpu-collectives "$collectives" --data synthetic --batch 32 --iters 12 --log-every 4 \
      --eval-every 0 --trace "$OUTDIR/trace_2nodes.json" --trace-iters 8:10 \
      >"$LOGS/gradflow_2nodes.log" 2>&1
    "$WORK/bin/runtime" trace-summary "$OUTDIR/trace_2nodes.json" \
      >"$LOGS/trace_2nodes_summary.txt" 2>&1
    line=$(grep -E "node 0: [0-9]+ allreduces on $lanes_kind lanes" "$LOGS/trace_2nodes_summary.txt")
    overlapped=$(echo "$line" | grep -oE '[0-9]+ of them overlapped' | grep -oE '^[0-9]+')
    if [[ -n "$overlapped" ]] && (( overlapped > 0 )); then
      row "allreduce during backward" "PASS" "2 nodes, $collectives: ${line#*: }"
    else
      row "allreduce during backward" "FAIL" "2 nodes, $collectives: ${line:-no trace} (gradflow_2nodes.log)"
    fi
  else
    row "allreduce during backward" "SKIP" "no time left"
  fi

  # The table, last.
  {
    echo
    echo "== gradflow GPU check, $(date -u +%F), ${card:-unknown GPU}, driver ${driver:-?}, $(elapsed) s =="
    printf '%-28s %-8s %s\n' "step" "result" "detail"
    for r in "${ROWS[@]}"; do
      IFS='|' read -r step result detail <<<"$r"
      printf '%-28s %-8s %s\n' "$step" "$result" "$detail"
    done
    echo
    echo "ResNet-50 training images/s and peak allocated GPU memory (PyTorch channels-last):"
    printf '%-6s %-28s %-28s %s\n' "batch" "PyTorch TF32" "PyTorch FP32" "gradflow TF32 (NHWC)"
    for batch in 32 64 128; do
      printf '%-6s %-28s %-28s %s\n' "$batch" "${TORCH[$batch,1]}" "${TORCH[$batch,0]}" "${OURS[$batch]}"
    done
    echo "gradflow TF32 at batch 32 with NCHW activations (--no-channels-last): ${OURS[32nchw]}"
  } | tee "$OUTDIR/gpu_check_table.txt"
  rm -rf "$WORK"
  for r in "${ROWS[@]}"; do [[ "$r" == *"|FAIL|"* || "$r" == *"|TIMEOUT|"* ]] && return 1; done
  return 0
}

case "${1:-}" in
  pack) pack ;;
  run) run_all ;;
  *) echo "usage: tools/gpu_check.sh pack|run" >&2; exit 2 ;;
esac
