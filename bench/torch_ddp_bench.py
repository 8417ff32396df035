#!/usr/bin/python3
"""PyTorch CPU data-parallel training throughput, the reference side of ddp_compare.sh.

One process of the run: with --world-size 1 it trains plainly (no DDP, no process group); with
--world-size N it is rank --rank of N processes that train torchvision's model under
DistributedDataParallel on the gloo backend (default bucket_cap_mb 25), meeting at
tcp://127.0.0.1:--port. ddp_compare.sh starts every rank itself, each under /usr/bin/time -v for
its own peak RSS.

The training is torch_train_bench.py's: torchvision `--model` (weights=None) in channels_last, SGD
lr 0.1 momentum 0.9 weight decay 1e-4 (gradflow's default), one fixed synthetic batch per process
(mean 0, variance 1 values, uniform labels: no loader on the clock), `--warmup` untimed steps then
`--iters` timed ones (zero_grad, forward, loss, backward, step). A step ends when this process's
optimizer.step() returns; under DDP, backward() returns only once every bucket's allreduce is done,
so the ranks run in lockstep. Rank 0 gathers every rank's step times afterwards and takes, per
step, the slowest rank's time: the job's step.

Communication timing (--comm-timing, on by default under DDP): a DDP comm hook that is PyTorch's
own default allreduce hook (divide by the world size, then allreduce of the bucket) with two
timestamps added: when DDP hands it the bucket, and when the allreduce's future completes (a
callback on gloo's thread). Per step:
  communication  the length of the union of the buckets' [handed over, completed] intervals
  exposed        from the last bucket's hand-over (its last gradient was just computed: backward's
                 compute is over) to the last completion: the time backward waits for the network
A bucket's interval includes any wait in gloo's queue behind earlier buckets, as gradflow's
counters do. --no-comm-timing leaves DDP's built-in C++ allreduce path alone.

The result is one JSON object per rank on stdout; progress goes to stderr.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ left in bench/ by the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train_bench import check_blas, log, peak_rss_kb  # noqa: E402

MODELS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=MODELS, default="resnet50")
    p.add_argument("--world-size", type=int, default=1, help="processes; 1: no DDP")
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--port", type=int, help="rendezvous port on 127.0.0.1 (world size > 1)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    p.add_argument("--batch", type=int, default=16, help="images per process and step")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps")
    p.add_argument("--iters", type=int, default=4, help="timed steps")
    p.add_argument("--bucket-cap-mb", type=float, default=25, help="DDP's bucket_cap_mb")
    p.add_argument("--comm-timing", action=argparse.BooleanOptionalAction, default=True,
                   help="time the allreduces with a comm hook (DDP only)")
    p.add_argument("--timeout", type=float, default=300, help="seconds for gloo's collectives")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if min(args.world_size, args.threads, args.batch, args.iters) < 1 or args.warmup < 0:
        p.error("--world-size, --threads, --batch and --iters must be positive, --warmup >= 0")
    if not 0 <= args.rank < args.world_size:
        p.error(f"--rank {args.rank} is not in [0, {args.world_size})")
    if args.world_size > 1 and not args.port:
        p.error("--port is required when --world-size > 1")
    return args


class CommTimer:
    """The default allreduce comm hook, with hand-over and completion times per bucket."""

    def __init__(self):
        self._lock = threading.Lock()
        self._intervals = []  # [start, end or None] per bucket of the current step

    def hook(self, process_group, bucket):
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
        interval = [time.perf_counter(), None]
        with self._lock:
            self._intervals.append(interval)

        def completed(future):
            interval[1] = time.perf_counter()
            return future.value()

        return allreduce_hook(process_group, bucket).then(completed)

    def take_step(self):
        """Communication and exposed seconds of the step just finished; resets."""
        with self._lock:
            intervals, self._intervals = self._intervals, []
        if not intervals:
            return 0.0, 0.0, 0
        if any(end is None for _, end in intervals):
            sys.exit("torch_ddp_bench.py: a bucket's allreduce had not completed when backward "
                     "returned")
        busy, covered_to = 0.0, float("-inf")
        for start, end in sorted(intervals):
            if end > covered_to:
                busy += end - max(start, covered_to)
                covered_to = end
        last_handover = max(start for start, _ in intervals)
        exposed = max(0.0, max(end for _, end in intervals) - last_handover)
        return busy, exposed, len(intervals)


def main(argv):
    args = parse_args(argv)
    import torch
    import torch.distributed as dist
    import torchvision

    torch.set_num_threads(args.threads)
    distributed = args.world_size > 1
    who = f"rank {args.rank}/{args.world_size}" if distributed else "1 process"
    result = {"model": args.model, "batch_per_process": args.batch, "world_size": args.world_size,
              "rank": args.rank, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "")}
    result.update(check_blas(torch))

    if distributed:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}",
                                rank=args.rank, world_size=args.world_size,
                                timeout=datetime.timedelta(seconds=args.timeout))
    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.model)(weights=None)
    model = model.to(memory_format=torch.channels_last).train()
    timer = None
    if distributed:
        # DDP broadcasts rank 0's parameters and buffers here, so the replicas start identical.
        model = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb)
        if args.comm_timing:
            timer = CommTimer()
            model.register_comm_hook(None, timer.hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    # Each rank its own batch, as each node of the data-parallel job reads its own shard.
    generator = torch.Generator().manual_seed(args.seed + args.rank)
    images = torch.empty(args.batch, 3, 224, 224).uniform_(-3**0.5, 3**0.5, generator=generator)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (args.batch,), generator=generator)

    steps, comm, exposed, buckets = [], [], [], []
    for i in range(args.warmup + args.iters):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        seconds = time.perf_counter() - start
        if not torch.isfinite(loss):
            sys.exit(f"torch_ddp_bench.py: {who}: loss is {loss.item()} at step {i + 1}")
        step_comm, step_exposed, step_buckets = timer.take_step() if timer else (0.0, 0.0, 0)
        timed = i >= args.warmup
        comm_note = (f", allreduce {step_comm:.3f} s in {step_buckets} buckets, exposed "
                     f"{step_exposed:.3f} s" if timer else "")
        log(f"{args.model} b{args.batch} {who} step {i + 1}: {seconds:.3f} s{comm_note}"
            f"{'' if timed else ' (warmup)'}")
        if timed:
            steps.append(seconds)
            comm.append(step_comm)
            exposed.append(step_exposed)
            buckets.append(step_buckets)

    result["step_seconds"] = steps
    job_steps = steps
    if distributed:
        mine = {"steps": steps, "communication": sum(comm), "exposed": sum(exposed)}
        everyone = [None] * args.world_size
        dist.all_gather_object(everyone, mine)  # after the clock: costs no timed step anything
        job_steps = [max(rank["steps"][i] for rank in everyone) for i in range(len(steps))]
        result["ranks"] = everyone
    median = statistics.median(job_steps)
    result.update({
        "job_step_seconds": job_steps, "median_step_seconds": median,
        "images_per_second_per_process": args.batch / median,
        "images_per_second": args.world_size * args.batch / median})
    if timer:  # this rank's (as gradflow's summary is node 0's); every rank's are in "ranks"
        result.update({"communication_seconds": sum(comm), "exposed_communication_seconds":
                       sum(exposed), "buckets": max(buckets)})
    result["peak_rss_kb"] = peak_rss_kb()
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    # Exit here, with the model and process group still alive: destroying them deadlocks now and
    # then in PyTorch 1.13 (seen here with the comm hook, about 1 rank in 5). ~Reducer drops the last
    # reference to ProcessGroupGloo, whose destructor joins gloo's worker threads while holding the
    # GIL, and a worker freeing a bucket tensor that Python saw waits for the GIL.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
