#!/usr/bin/env python3
"""Training fidelity at small scale: the paper's large-minibatch experiment (Goyal et al. 2017,
Table 2 / Figure 1) on Fashion-MNIST with the zoo's small ResNet.

Every run keeps n = --per-replica images per batch-norm replica and the same number of epochs;
the global batch kn grows through virtual replicas (--replicas-per-node K = kn / n) and the
learning rate follows the linear scaling rule from the base batch, with gradual warmup over the
runtime's default share of training (5/90 of the run). Controls at a large batch: no warmup,
constant warmup, square-root scaling. Reports the final test error as the median of the last
epochs' evaluations (as the paper does), a table and a plot of the curves.

    bench/fidelity.sh [--epochs 6] [--batches 32,256,1024,2048,4096,8192] [--control-batch 4096]
"""
import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, log_path):
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.time() - start
    text = open(log_path).read()
    # Divergence (a non-finite loss) is a result of the experiment, not a failure of it.
    if proc.returncode != 0 and "training diverged" not in text:
        print(text[-3000:], file=sys.stderr)
        raise SystemExit(f"run failed ({proc.returncode}); log {log_path}")
    return text, seconds


def eval_curve(text):
    """Test error (%) after each evaluation, in order."""
    return [100.0 - float(m.group(1)) for m in re.finditer(r"eval after iteration \d+: loss [\d.]+  top-1 ([\d.]+)%", text)]


def train_curve(text):
    """(epoch, training loss) from progress lines."""
    points = []
    for m in re.finditer(r"epoch (\d+)/\d+  iter (\d+)/(\d+)  loss ([\d.]+)", text):
        points.append((int(m.group(2)), float(m.group(4))))
    return points


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", default=os.path.join(ROOT, "build/runtime/runtime"))
    p.add_argument("--graph", default=os.path.join(ROOT, "out/resnet-fmnist.fb"))
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--per-replica", type=int, default=32)
    p.add_argument("--batches", default="32,256,1024,2048,4096,8192")
    p.add_argument("--control-batch", type=int, default=4096)
    p.add_argument("--lr", type=float, default=0.4, help="lr per 256 images at the base batch")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                   help="runs with several replicas use this many local nodes of 1 thread each")
    p.add_argument("--median-of", type=int, default=3, help="final error: median of the last evaluations")
    p.add_argument("--out", default=os.path.join(ROOT, "docs"))
    p.add_argument("--work", default=os.path.join(ROOT, "out/fidelity"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)

    n = args.per_replica
    batches = [int(b) for b in args.batches.split(",")]
    runs = [(f"kn={kn}", kn, []) for kn in batches]
    controls = [("no warmup", ["--warmup", "none"]),
                ("constant warmup", ["--warmup", "constant"]),
                ("sqrt scaling", ["--lr-scaling", "sqrt"])]
    runs += [(f"kn={args.control_batch}, {name}", args.control_batch, extra) for name, extra in controls]

    results = []
    total_start = time.time()
    for label, kn, extra in runs:
        if kn % n:
            raise SystemExit(f"global batch {kn} is not a multiple of --per-replica {n}")
        # The replicas spread over local nodes of one thread each (no OpenMP team to share cores),
        # the rest as virtual replicas: the same arithmetic either way (the virtual-replica test).
        replicas = kn // n
        nodes = args.cores if replicas % args.cores == 0 else 1
        threads = 1 if nodes > 1 else args.cores
        cmd = [args.runtime, "--graph", args.graph, "--data", "fashion-mnist", "--batch", str(n),
               "--nodes", str(nodes), "--replicas-per-node", str(replicas // nodes),
               "--threads", str(threads), "--epochs", str(args.epochs), "--lr", str(args.lr),
               "--eval-every", "1", "--log-every", "0"] + extra
        safe = re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")
        text, seconds = run(cmd, os.path.join(args.work, safe + ".log"))
        errors = eval_curve(text)
        diverged = "training diverged" in text
        if diverged:
            # A diverged network predicts one class: chance error on 10 balanced classes.
            errors += [90.0] * (args.epochs - len(errors))
        if len(errors) < args.epochs:
            raise SystemExit(f"{label}: expected {args.epochs} evaluations, found {len(errors)}")
        final = statistics.median(errors[-args.median_of:])
        results.append(dict(label=label, kn=kn, extra=extra, errors=errors, final=final, diverged=diverged,
                            seconds=seconds, cmd=cmd, train=train_curve(text)))
        print(f"{label}: final error {final:.2f}% ({seconds:.0f} s)", flush=True)
    wall = time.time() - total_start

    base = results[0]["final"]
    with open(os.path.join(args.out, "fidelity.csv"), "w") as f:
        f.write("run,epoch,test_error\n")
        for r in results:
            for e, err in enumerate(r["errors"], 1):
                f.write(f"\"{r['label']}\",{e},{err:.3f}\n")
    lines = ["| run | global batch kn | virtual replicas | final test error (median of last "
             f"{args.median_of}) | vs base | wall time |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        final = f"{r['final']:.2f}%" + (" (diverged)" if r["diverged"] else "")
        lines.append(f"| {r['label']} | {r['kn']} | {r['kn'] // n} | {final} | "
                     f"{r['final'] - base:+.2f} | {r['seconds']:.0f} s |")
    commands = "\n".join(" ".join(shlex.quote(c if not c.startswith(ROOT) else os.path.relpath(c, ROOT))
                                  for c in r["cmd"]) for r in results)
    with open(os.path.join(args.out, "fidelity_table.md"), "w") as f:
        f.write("\n".join(lines) + "\n\nCommands (one per run):\n\n```\n" + commands + "\n```\n")
        f.write(f"\nTotal wall time: {wall / 60:.1f} min on this machine ({os.cpu_count()} cores, "
                f"{args.cores} used per run), {time.strftime('%Y-%m-%d')}.\n")
    print("\n".join(lines))
    print(f"wall time {wall / 60:.1f} min")

    # The curves, with gnuplot (Debian's gnuplot-nox) when it is there.
    dat = os.path.join(args.work, "curves.dat")
    with open(dat, "w") as f:
        for r in results:
            f.write(f"# {r['label']}\n")
            for e, err in enumerate(r["errors"], 1):
                f.write(f"{e} {err:.3f}\n")
            f.write("\n\n")
    plot = os.path.join(args.out, "fidelity.png")
    script = (f"set terminal png size 900,560; set output '{plot}';"
              f"set title 'Fashion-MNIST, resnet-fmnist, n={n} per replica, {args.epochs} epochs';"
              "set xlabel 'epoch'; set ylabel 'test error (%)'; set key outside right; set grid;"
              "plot " + ", ".join(f"'{dat}' index {i} with linespoints title '{r['label']}'"
                                   for i, r in enumerate(results)))
    try:
        subprocess.run(["gnuplot", "-e", script], check=True)
        print(f"plot: {plot}")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"no plot ({e}); install gnuplot-nox", file=sys.stderr)


if __name__ == "__main__":
    main()
