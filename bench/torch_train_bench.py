#!/usr/bin/python3
"""PyTorch CPU training throughput, the reference side of train_compare.sh.

Two workloads, each the same training that gradflow's `runtime` does in train_compare.sh:

  resnet50    torchvision ResNet-50 (weights=None), SGD momentum 0.9 (weight decay 1e-4, as
              gradflow's default), one fixed synthetic batch (mean 0, variance 1 values and uniform
              labels, so no loader cost on either side's clock). `--warmup` untimed steps, then
              the median of `--iters` timed steps (zero_grad, forward, loss, backward, step).
              --layout channels_last | contiguous | both ("both" times each in this process and
              reports the faster; train_compare.sh runs one layout per process instead, so that
              each peak RSS belongs to one layout).
  fmnist-cnn  gradflow's fmnist-cnn exactly: conv 1->32 3x3 pad 1, ReLU, max-pool 2; conv 32->64
              3x3 pad 1, ReLU, max-pool 2; flatten; FC 3136->128, ReLU; FC 128->10. One epoch of
              Fashion-MNIST (shuffled, last partial batch dropped like gradflow: 468 iterations at
              batch 128), SGD lr 0.05 momentum 0.9 no weight decay, images normalized with mean
              0.2860 std 0.3530. Reports the epoch's images/s (training loop only, as gradflow's
              "done:" line) and top-1 accuracy on the 10000 test images afterwards.

The images stay uint8 in memory and are normalized per batch, as a loader would: a float32 copy of
the training set alone would add 188 MB to the peak RSS that train_compare.sh compares.

Prints what BLAS torch loaded (the BLAS_INFO of torch.__config__.show() is the build's, "generic"
on Debian: the library actually used is whichever libblas.so.3 the alternatives system points at)
and fails on the reference (netlib) BLAS. The result is one JSON object on stdout; progress goes
to stderr.
"""
import argparse
import gzip
import json
import os
import statistics
import sys
import time

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_MEAN = 0.2860
FMNIST_STD = 0.3530


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("resnet50", "fmnist-cnn"), required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, help="default: 32 (resnet50), 128 (fmnist-cnn)")
    p.add_argument("--layout", choices=("channels_last", "contiguous", "both"), default="both",
                   help="resnet50's memory format")
    p.add_argument("--warmup", type=int, default=2, help="untimed resnet50 steps")
    p.add_argument("--iters", type=int, default=5, help="timed resnet50 steps")
    p.add_argument("--data-dir", default=FASHION_MNIST_DIR, help="Fashion-MNIST's gz IDX files")
    p.add_argument("--lr", type=float, help="default: 0.1 (resnet50), 0.05 (fmnist-cnn)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.batch is None:
        args.batch = 32 if args.model == "resnet50" else 128
    if args.lr is None:
        args.lr = 0.1 if args.model == "resnet50" else 0.05
    if args.threads < 1 or args.batch < 1 or args.iters < 1 or args.warmup < 0:
        p.error("--threads, --batch and --iters must be positive, --warmup non-negative")
    return args


def log(message):
    print(message, file=sys.stderr, flush=True)


def loaded_blas():
    """Real paths of the BLAS libraries mapped into this process."""
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if "blas" in name or "mkl" in name or "blis" in name:
                libs.add(os.path.realpath(path))
    return sorted(libs)


def check_blas(torch):
    """The BLAS line of torch's build config and the library really loaded; exits on netlib's."""
    blas_info = next((part for line in torch.__config__.show().splitlines()
                      for part in line.replace(",", " ").split()
                      if part.startswith("BLAS_INFO=")), "BLAS_INFO=?")
    libs = loaded_blas()
    optimized = any(key in lib for lib in libs for key in ("openblas", "mkl", "blis"))
    log(f"torch {torch.__version__} config: {blas_info}; loaded: {', '.join(libs) or 'none'}")
    if not optimized:
        sys.exit("torch_train_bench.py: torch runs on the reference BLAS; install an optimized one "
                 "(apt-get install libopenblas0-openmp) so that the comparison is fair")
    return {"blas_info": blas_info, "blas_loaded": libs}


def peak_rss_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def time_resnet50(torch, torchvision, args, layout):
    torch.manual_seed(args.seed)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = torchvision.models.resnet50(weights=None).to(memory_format=fmt)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    images = torch.empty(args.batch, 3, 224, 224).uniform_(-3**0.5, 3**0.5)
    images = images.contiguous(memory_format=fmt)
    labels = torch.randint(0, 1000, (args.batch,))
    steps = []
    for i in range(args.warmup + args.iters):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        seconds = time.perf_counter() - start
        if not torch.isfinite(loss):
            sys.exit(f"torch_train_bench.py: resnet50 loss is {loss.item()} at step {i}")
        log(f"resnet50 b{args.batch} {layout} step {i + 1}: {seconds:.3f} s"
            f"{' (warmup)' if i < args.warmup else ''}")
        if i >= args.warmup:
            steps.append(seconds)
    median = statistics.median(steps)
    return {"layout": layout, "step_seconds": steps, "median_step_seconds": median,
            "images_per_second": args.batch / median}


def read_idx(path):
    import numpy as np
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    if data[2] != 0x08:
        sys.exit(f"torch_train_bench.py: {path}: expected unsigned-byte IDX data")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fmnist_cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def normalized(images_u8):
    return images_u8.unsqueeze(1).float().div_(255).sub_(FMNIST_MEAN).div_(FMNIST_STD)


def train_fmnist(torch, args):
    def load(split):
        images = read_idx(os.path.join(args.data_dir, f"{split}-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(args.data_dir, f"{split}-labels-idx1-ubyte.gz"))
        return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype("int64"))

    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    torch.manual_seed(args.seed)
    model = fmnist_cnn(torch)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=0)
    loss_fn = torch.nn.CrossEntropyLoss()
    iterations = train_x.shape[0] // args.batch
    order = torch.randperm(train_x.shape[0], generator=torch.Generator().manual_seed(args.seed))
    model.train()
    log_every = max(1, iterations // 10)
    start = time.perf_counter()
    window_start, window_loss = start, 0.0
    for it in range(iterations):
        index = order[it * args.batch:(it + 1) * args.batch]
        images, labels = normalized(train_x[index]), train_y[index]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        window_loss += loss.item()
        if (it + 1) % log_every == 0 or it + 1 == iterations:
            now = time.perf_counter()
            n = (it % log_every) + 1
            log(f"fmnist-cnn iter {it + 1}/{iterations}  loss {window_loss / n:.4f}  "
                f"{n * args.batch / (now - window_start):.1f} img/s")
            window_start, window_loss = now, 0.0
    seconds = time.perf_counter() - start

    model.eval()
    correct = 0
    with torch.no_grad():
        for first in range(0, test_x.shape[0], args.batch):
            logits = model(normalized(test_x[first:first + args.batch]))
            correct += (logits.argmax(1) == test_y[first:first + args.batch]).sum().item()
    top1 = correct / test_x.shape[0]
    log(f"fmnist-cnn: {iterations} iterations in {seconds:.1f} s, "
        f"{iterations * args.batch / seconds:.1f} img/s, test top-1 {100 * top1:.2f}%")
    return {"iterations": iterations, "seconds": seconds,
            "images_per_second": iterations * args.batch / seconds,
            "test_top1": top1, "test_images": int(test_x.shape[0])}


def main(argv):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    result = {"model": args.model, "batch": args.batch, "threads": torch.get_num_threads(),
              "torch": torch.__version__}
    result.update(check_blas(torch))
    if args.model == "fmnist-cnn":
        result.update(train_fmnist(torch, args))
    else:
        import torchvision
        layouts = ("channels_last", "contiguous") if args.layout == "both" else (args.layout,)
        runs = [time_resnet50(torch, torchvision, args, layout) for layout in layouts]
        best = max(runs, key=lambda run: run["images_per_second"])
        result.update(best)
        result["all_layouts"] = {run["layout"]: run["images_per_second"] for run in runs}
    result["peak_rss_kb"] = peak_rss_kb()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
