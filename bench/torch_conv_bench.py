#!/usr/bin/python3
"""The ResNet-50 convolution shapes of conv_bench, timed in PyTorch on the CPU.

Same cases as conv_bench (shapes from `conv_bench --list_shapes`): forward (F.conv2d),
backward-data and backward-weights (aten.convolution_backward with one output mask each: what
autograd's ConvolutionBackward0 and torch.nn.grad.conv2d_input / conv2d_weight call, without the
autograd bookkeeping and with a real input tensor so that its memory format counts). Each case runs
with channels_last and with contiguous (NCHW) tensors; the faster is reported, and both are kept.
Time: `repeats` repeats of at least `min_time` seconds each, median of the per-call means.

PyTorch allocates every output with malloc. glibc serves blocks above its mmap threshold (at most
32 MiB) with a fresh mmap, so each call on a 51 MB activation of ResNet-50's first stage pays ~12k
page faults, which on this VM cost more than the convolution. compare_conv.sh therefore runs this
script twice: with GLIBC_TUNABLES raising the threshold ("retain": kernel against kernel) and as
shipped ("default"); each record says which.

Prints one JSON object per case and layout (--json) or a readable line; --check-blas reports which
BLAS torch loaded and how fast a matmul runs, and fails on the reference (netlib) BLAS.
"""
import argparse
import csv
import json
import os
import statistics
import sys
import time

DIRECTIONS = ("fwd", "bwd_data", "bwd_weights")
LAYOUTS = ("channels_last", "contiguous")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", help="TSV from `conv_bench --list_shapes`")
    p.add_argument("--only", action="append", default=[],
                   help="shape name(s) to run (repeatable or comma-separated); default all")
    p.add_argument("--threads", type=int,
                   default=int(os.environ.get("GRADFLOW_BENCH_THREADS", "2")))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.1, help="seconds per repeat")
    p.add_argument("--layouts", default=",".join(LAYOUTS))
    p.add_argument("--once", action="store_true",
                   help="run each case once, untimed, printing a marker before it "
                        "(for ONEDNN_VERBOSE=1)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--check-blas", action="store_true",
                   help="only report torch's BLAS and a matmul's speed")
    args = p.parse_args(argv)
    if args.threads < 1 or args.batch < 1 or args.repeats < 1 or args.min_time < 0:
        p.error("--threads, --batch and --repeats must be >= 1 and --min-time >= 0")
    args.layouts = [l for l in args.layouts.split(",") if l]
    for layout in args.layouts:
        if layout not in LAYOUTS:
            p.error(f"--layouts: unknown layout '{layout}' (known: {', '.join(LAYOUTS)})")
    args.only = {n for item in args.only for n in item.split(",") if n}
    if not args.check_blas and not args.shapes:
        p.error("--shapes is required (write it with `conv_bench --list_shapes > shapes.tsv`)")
    return args


def read_shapes(path, only):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        sys.exit(f"torch_conv_bench: {path} holds no shapes")
    shapes = []
    for row in rows:
        try:
            shape = {k: int(row[k]) for k in ("in_channels", "out_channels", "kernel", "stride",
                                               "height", "padding", "count", "input_is_image")}
        except (KeyError, ValueError, TypeError) as e:
            sys.exit(f"torch_conv_bench: {path}: bad row {row}: {e}")
        shape["name"] = row["name"]
        if not only or shape["name"] in only:
            shapes.append(shape)
    missing = only - {s["name"] for s in shapes}
    if missing:
        sys.exit(f"torch_conv_bench: {path} has no shape named {', '.join(sorted(missing))}")
    return shapes


def loaded_blas():
    """Shared objects in this process that provide BLAS, from /proc/self/maps."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if any(k in name for k in ("blas", "mkl_", "blis", "atlas")):
                libs.add(os.path.realpath(path))
    return sorted(libs)


def check_blas(torch, threads):
    config = torch.__config__.show()
    blas_info = next((part.split("=", 1)[1] for line in config.splitlines()
                      for part in line.replace(",", " ").split()
                      if part.startswith("BLAS_INFO=")), "?")
    libs = loaded_blas()
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    torch.mm(a, b)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.5:
        torch.mm(a, b)
        calls += 1
    gflops = 2 * 1024**3 * calls / (time.perf_counter() - start) / 1e9
    reference = any("/blas/" in lib or lib.endswith("/libblas.so.3") for lib in libs) and \
        not any("openblas" in lib or "mkl" in lib or "blis" in lib for lib in libs)
    print(f"torch {torch.__version__}: BLAS_INFO={blas_info}; loaded: {', '.join(libs) or 'none'}")
    print(f"torch 1024^3 sgemm, {threads} threads: {gflops:.1f} GFLOP/s"
          f"{' (REFERENCE BLAS: install libopenblas0-openmp)' if reference else ''}")
    return not reference


def make_case(torch, shape, direction, layout, batch):
    """A no-argument callable doing one convolution of `direction`."""
    n, c, o, k = batch, shape["in_channels"], shape["out_channels"], shape["kernel"]
    h, s, pad = shape["height"], shape["stride"], shape["padding"]
    oh = (h + 2 * pad - k) // s + 1
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(n, c, h, h, generator=gen).mul_(2).sub_(1).to(memory_format=fmt)
    w = torch.rand(o, c, k, k, generator=gen).mul_(2).sub_(1).to(memory_format=fmt)
    dy = torch.rand(n, o, oh, oh, generator=gen).mul_(2).sub_(1).to(memory_format=fmt)
    stride, padding, dilation = [s, s], [pad, pad], [1, 1]
    conv_backward = torch.ops.aten.convolution_backward
    if direction == "fwd":
        return lambda: torch.nn.functional.conv2d(x, w, None, stride, padding)
    mask = [True, False, False] if direction == "bwd_data" else [False, True, False]
    return lambda: conv_backward(dy, x, w, None, stride, padding, dilation, False, [0, 0], 1, mask)


def time_case(fn, repeats, min_time, threads):
    """(median seconds per call, per-repeat seconds, busy): busy is the process's CPU time over
    wall time x threads, ~1 when nothing else competed for the cores."""
    fn()
    fn()  # warm-up: oneDNN primitive creation and first touch of outputs
    per_call = []
    cpu_start, wall = time.process_time(), 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        per_call.append(elapsed / calls)
        wall += elapsed
    busy = (time.process_time() - cpu_start) / (wall * threads)
    return statistics.median(per_call), per_call, busy


def malloc_mode():
    """'retain' when GLIBC_TUNABLES keeps large blocks in the heap, else 'default'."""
    return "retain" if "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", "") else "default"


def main(argv):
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch  # after OMP_NUM_THREADS: libgomp reads it once
    torch.set_num_threads(args.threads)
    if args.check_blas:
        return 0 if check_blas(torch, args.threads) else 1

    with torch.no_grad():
        for shape in read_shapes(args.shapes, args.only):
            macs = (args.batch * shape["out_channels"] * shape["in_channels"] *
                    shape["kernel"] ** 2 *
                    ((shape["height"] + 2 * shape["padding"] - shape["kernel"]) //
                     shape["stride"] + 1) ** 2)
            for direction in DIRECTIONS:
                if direction == "bwd_data" and shape["input_is_image"]:
                    continue  # training never needs the gradient of the image
                for layout in args.layouts:
                    fn = make_case(torch, shape, direction, layout, args.batch)
                    case = f"{direction}/{shape['name']}"
                    if args.once:
                        fn()  # primitive creation (and its reorders) outside the marked call
                        print(f"torch_case {case} {layout}", flush=True)
                        fn()
                        print("torch_case_end", flush=True)
                        continue
                    seconds, repeats, busy = time_case(fn, args.repeats, args.min_time,
                                                       args.threads)
                    record = {"case": case, "layout": layout, "malloc": malloc_mode(),
                              "threads": args.threads,
                              "batch": args.batch, "seconds": seconds,
                              "gflops": 2 * macs / seconds / 1e9, "repeats": repeats,
                              "busy": busy}
                    if args.json:
                        print(json.dumps(record), flush=True)
                    else:
                        print(f"{case:32s} {layout:14s} {malloc_mode():8s} {seconds * 1e3:9.3f} ms "
                              f"{record['gflops']:8.1f} GFLOP/s  busy {busy:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
