#!/usr/bin/python3
"""Tabulates one compare_conv.sh run: gradflow (conv_bench JSON) against PyTorch
(torch_conv_bench.py --json) per ResNet-50 shape and direction, with the oneDNN implementation
each picked (from ONEDNN_VERBOSE=1 logs) and the network-weighted totals of one training step."""
import argparse
import collections
import csv
import glob
import json
import re
import sys

DIRECTIONS = ("fwd", "bwd_data", "bwd_weights")
PROP_TO_DIRECTION = {"forward_training": "fwd", "forward_inference": "fwd",
                     "backward_data": "bwd_data", "backward_weights": "bwd_weights"}
PROBLEM = re.compile(r"ic(\d+)oc(\d+)_ih(\d+)oh\d+kh(\d+)sh(\d+)")


def read_shapes(path):
    with open(path, newline="") as f:
        return [dict(row) for row in csv.DictReader(f, delimiter="\t")]


def macs(shape, batch):
    c, o, k, s, h, p = (int(shape[x]) for x in ("in_channels", "out_channels", "kernel", "stride",
                                                 "height", "padding"))
    oh = (h + 2 * p - k) // s + 1
    return batch * o * oh * oh * c * k * k


def read_gradflow(paths):
    """case -> {seconds, reorders}: the median over repetitions of each benchmark."""
    results = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            if b.get("error_occurred"):
                sys.exit(f"conv_table: {path}: {b['name']}: {b.get('error_message')}")
            case = b.get("run_name", b["name"]).removesuffix("/real_time")
            unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            results[case] = {"seconds": b["real_time"] * unit,
                             "reorders": b.get("reorders/run", float("nan")),
                             # The main thread is oneDNN's OpenMP master: busy all through Run
                             # unless another process took its core.
                             "busy": b["cpu_time"] / b["real_time"]}
    return results


def read_torch(path):
    """case -> {(layout, malloc): record}; a later record (a retry) replaces an earlier one."""
    results = collections.defaultdict(dict)
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                results[r["case"]][r["layout"], r.get("malloc", "default")] = r
    return results


def quiet_check(d, name, min_busy):
    """Whether both sides of shape `name` ran with their cores to themselves."""
    gf = read_gradflow([f"{d}/gradflow_{name}.json"])
    th = read_torch(f"{d}/torch.jsonl")
    busy = [g["busy"] for g in gf.values()]
    busy += [r["busy"] for case, records in th.items() if case.endswith("/" + name)
             for r in records.values()]
    print(f"    busy: min {min(busy):.2f} over {len(busy)} measurements")
    return bool(busy) and min(busy) >= min_busy


def conv_line(line):
    """(case, implementation) of a oneDNN verbose exec line of a convolution, else None."""
    fields = line.strip().split(",")
    if len(fields) < 10 or fields[1] != "exec" or fields[3] != "convolution":
        return None
    direction = PROP_TO_DIRECTION.get(fields[5])
    m = PROBLEM.search(fields[-2])
    if direction is None or m is None:
        return None
    ic, oc, ih, kh, sh = m.groups()
    weights = re.search(r"wei_f32:\w*:blocked:(\w+)", fields[6])
    impl = fields[4] + (f"[{weights.group(1)}]" if weights else "")
    return f"{direction}/c{ic}_o{oc}_k{kh}_s{sh}_h{ih}", impl


def read_gradflow_verbose(path):
    """case -> (implementation, ms of its weight reorder) from conv_bench's verbose log.

    A case runs twice (warm-up, then one iteration); the second call's lines win. The weight
    reorder comes right before the convolution (fwd, bwd_data) or right after it (bwd_weights:
    the gradient leaves the blocked layout)."""
    impls, reorder_ms = {}, {}
    pending, last_case = None, None
    with open(path, errors="replace") as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 3 and fields[1] == "exec" and fields[3] == "reorder":
                ms = float(fields[-1])
                if last_case and last_case.startswith("bwd_weights/"):
                    reorder_ms[last_case] = ms
                    last_case = None
                else:
                    pending = ms
                continue
            parsed = conv_line(line)
            if parsed:
                case, impl = parsed
                impls[case] = impl
                if not case.startswith("bwd_weights/"):
                    reorder_ms[case] = pending if pending is not None else 0.0
                pending, last_case = None, case
    return {case: (impl, reorder_ms.get(case, float("nan"))) for case, impl in impls.items()}


def read_torch_verbose(path):
    """(case, layout) -> (implementation, reorders in the one marked call)."""
    impls, current, reorders, impl = {}, None, 0, "?"
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("torch_case "):
                _, case, layout = line.split()
                current, reorders, impl = (case, layout), 0, "?"
            elif line.startswith("torch_case_end") and current:
                impls[current] = (impl, reorders)
                current = None
            elif current and ",exec," in line:
                if ",reorder," in line:
                    reorders += 1
                parsed = conv_line(line)
                if parsed:
                    impl = parsed[1]
    return impls


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, help="compare_conv.sh output folder")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--only", default="", help="comma-separated shape names this run measured")
    p.add_argument("--quiet-check", metavar="NAME",
                   help="only check shape NAME's contention: exit 0 when every measurement of it "
                        "had busy >= --min-busy")
    p.add_argument("--min-busy", type=float, default=0.85)
    args = p.parse_args(argv)
    d = args.dir
    if args.quiet_check:
        return 0 if quiet_check(d, args.quiet_check, args.min_busy) else 1
    shapes = read_shapes(f"{d}/shapes.tsv")
    only = {name for name in args.only.split(",") if name}
    if only:
        shapes = [s for s in shapes if s["name"] in only]
    gf = read_gradflow(sorted(glob.glob(f"{d}/gradflow_*.json")))
    th = read_torch(f"{d}/torch.jsonl")
    gf_impl = read_gradflow_verbose(f"{d}/gradflow_verbose.log")
    th_impl = read_torch_verbose(f"{d}/torch_verbose.log")

    header = (f"{'shape (Cin,Cout,k,s,H)':24s} {'n':>2s} {'dir':11s} {'gf ms':>8s} "
              f"{'gf GF/s':>8s} {'pt ms':>8s} {'pt GF/s':>8s} {'pt layout':13s} {'pt/gf':>6s} "
              f"{'reord gf/pt':>11s} {'pt ms*':>8s} {'busy gf/pt':>10s}  "
              "gradflow impl[weights] | pytorch impl[weights]")
    print(header)
    print("-" * len(header))
    totals = collections.defaultdict(float)  # (who, direction) -> seconds per training step
    reorders_per_step = 0.0
    reorder_ms_per_step = 0.0
    missing = []
    for shape in shapes:
        n = int(shape["count"])
        flops = 2 * macs(shape, args.batch)
        label = (f"{shape['in_channels']},{shape['out_channels']},{shape['kernel']},"
                 f"{shape['stride']},{shape['height']}")
        for direction in DIRECTIONS:
            if direction == "bwd_data" and shape["input_is_image"] == "1":
                continue
            case = f"{direction}/{shape['name']}"
            if case not in gf or case not in th:
                missing.append(case)
                continue
            g = gf[case]
            layouts = {layout: r["seconds"] for (layout, malloc), r in th[case].items()
                       if malloc == "retain"}
            shipped = th[case].get(("channels_last", "default"), {}).get("seconds", float("nan"))
            if not layouts:
                missing.append(case)
                continue
            best = min(layouts, key=layouts.get)
            t = layouts[best]
            totals["gradflow", direction] += n * g["seconds"]
            totals["pytorch best", direction] += n * t
            for layout, seconds in layouts.items():
                totals[f"pytorch {layout}", direction] += n * seconds
            totals["pytorch channels_last*", direction] += n * shipped
            reorders_per_step += n * g["reorders"]
            gf_conv_impl, gf_reorder_ms = gf_impl.get(case, ("?", float("nan")))
            reorder_ms_per_step += n * gf_reorder_ms
            pt_impl, pt_reorders = th_impl.get((case, best), ("?", float("nan")))
            pt_busy = th[case][best, "retain"]["busy"]
            print(f"{label:24s} {n:2d} {direction:11s} {g['seconds'] * 1e3:8.2f} "
                  f"{flops / g['seconds'] / 1e9:8.1f} {t * 1e3:8.2f} {flops / t / 1e9:8.1f} "
                  f"{best:13s} {t / g['seconds']:6.2f} {g['reorders']:5.0f}/{pt_reorders:<5.0f} "
                  f"{shipped * 1e3:8.2f} {g['busy']:5.2f}/{pt_busy:<4.2f}"
                  f"  {gf_conv_impl} | {pt_impl}")
    if missing:
        print(f"\nMISSING results for: {', '.join(missing)}")

    print("\nNetwork-weighted (each shape x its count in ResNet-50; one training step's "
          f"convolutions at batch {args.batch}), ms:")
    whos = ["gradflow", "pytorch best"] + sorted(
        {who for who, _ in totals if who.startswith("pytorch ") and who != "pytorch best"})
    print(f"{'':34s} " + " ".join(f"{d:>12s}" for d in DIRECTIONS + ("all",)))
    for who in whos:
        values = [totals[who, d] for d in DIRECTIONS]
        print(f"{who:34s} " + " ".join(f"{v * 1e3:12.1f}" for v in values + [sum(values)]))
    gf_all = sum(totals["gradflow", d] for d in DIRECTIONS)
    print("time ratio, PyTorch / gradflow:")
    for who in whos[1:]:
        ratios = [totals[who, d] / totals["gradflow", d] if totals["gradflow", d] else float("nan")
                  for d in DIRECTIONS]
        overall = sum(totals[who, d] for d in DIRECTIONS) / gf_all if gf_all else float("nan")
        print(f"{'  ' + who:34s} " +
              " ".join(f"{r:12.2f}" for r in ratios + [overall]))
    print(f"gradflow reorders per training step (CpuContext::reorders, all convs): "
          f"{reorders_per_step:.0f}, taking ~{reorder_ms_per_step:.1f} ms of the "
          f"{gf_all * 1e3:.1f} ms (oneDNN's own times of one warm call each)")
    print("(pt/gf and the time ratios: > 1 means gradflow is faster. PyTorch runs with glibc's mmap"
          "\n threshold raised so that its per-call output malloc reuses memory; pt ms* and"
          "\n 'channels_last*' are PyTorch as shipped (default malloc), channels_last."
          "\n 'pytorch best' takes the faster layout per case: an optimistic bound, one model uses"
          "\n one layout. reord: reorders per call, gradflow from CpuContext::reorders(), PyTorch"
          "\n counted in its ONEDNN_VERBOSE log. busy: CPU time / wall time (gradflow: main thread;"
          "\n PyTorch: process / threads); below ~0.9 another process took cores during the case.)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
