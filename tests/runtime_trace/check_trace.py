#!/usr/bin/env python3
"""Checks a gradflow trace with Python's own JSON parser (the trace format contract, issue 6).

usage: check_trace.py FILE --nodes N --iterations A:B
Exit 0 and one "OK" line when every check passes; 1 and the first failures otherwise.
"""
import argparse
import collections
import json
import sys

EPS = 0.002  # microseconds: timestamps carry 3 decimals


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--iterations", required=True, help="A:B, the traced window")
    args = parser.parse_args()
    first, last = (int(v) for v in args.iterations.split(":"))
    window = set(range(first, last + 1))
    errors = []

    def fail(message):
        errors.append(message)

    with open(args.file, encoding="utf-8") as f:
        doc = json.load(f)  # raises on invalid JSON: the test sees a non-zero exit
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        print("not a trace: no traceEvents list")
        return 1
    if doc.get("displayTimeUnit") != "ms":
        fail("displayTimeUnit is not ms")
    meta = doc.get("otherData", {}).get("gradflow")
    if not isinstance(meta, dict):
        print("otherData.gradflow missing")
        return 1
    if meta.get("nodes") != args.nodes:
        fail(f"otherData nodes {meta.get('nodes')} != {args.nodes}")
    events = doc["traceEvents"]

    # Every event has the common fields.
    for i, e in enumerate(events):
        for key in ("name", "ph", "ts", "pid", "tid"):
            if key not in e:
                fail(f"event {i} has no {key}: {e}")
    if errors:
        return report(errors)

    # Processes and named threads.
    process_names = {e["pid"]: e["args"]["name"] for e in events
                     if e["ph"] == "M" and e["name"] == "process_name"}
    thread_names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
                    if e["ph"] == "M" and e["name"] == "thread_name"}
    if sorted(process_names) != list(range(args.nodes)):
        fail(f"processes {sorted(process_names)} != nodes 0..{args.nodes - 1}")
    for pid, name in process_names.items():
        if name != f"node {pid}":
            fail(f"process {pid} is named {name!r}")
    for e in events:
        if e["ph"] not in ("M", "C") and (e["pid"], e["tid"]) not in thread_names:
            fail(f"thread {e['pid']}/{e['tid']} of {e['name']!r} has no thread_name")
            break
    for pid in range(args.nodes):
        names = {n for (p, _), n in thread_names.items() if p == pid}
        for wanted in ("compute stream", "data loader", "training loop"):
            # A device that times its own work (a GPU) has a track "GPU compute stream".
            if wanted not in names and f"GPU {wanted}" not in names:
                fail(f"node {pid} has no thread named {wanted!r} (has {sorted(names)})")
        # Scheduler workers appear only when host-stream nodes ran (every thread with events
        # must be named, checked above); the training graph's nodes all run on the compute stream.
        if args.nodes > 1 and not any(n.startswith("collectives lane ") for n in names):
            fail(f"node {pid} has no collectives lane thread")

    # X durations, X nesting and B/E balance per thread.
    per_thread = collections.defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            if not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
                fail(f"X event {e['name']!r} has duration {e.get('dur')}")
            per_thread[(e["pid"], e["tid"])].append(e)
        elif e["ph"] in ("B", "E"):
            per_thread[(e["pid"], e["tid"])].append(e)
    for thread, evs in per_thread.items():
        evs.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        depth = 0
        stack = []  # ends of the open X slices
        for e in evs:
            if e["ph"] == "B":
                depth += 1
                continue
            if e["ph"] == "E":
                depth -= 1
                if depth < 0:
                    fail(f"thread {thread}: E without B at {e['ts']}")
                    depth = 0
                continue
            while stack and e["ts"] >= stack[-1] - EPS:
                stack.pop()
            end = e["ts"] + e["dur"]
            if stack and end > stack[-1] + EPS:
                fail(f"thread {thread}: {e['name']!r} [{e['ts']}, {end}] overlaps its parent "
                     f"ending at {stack[-1]}")
                break
            stack.append(end)
        if depth != 0:
            fail(f"thread {thread}: {depth} B events without E")

    # Flows: both ends of every arrow; async events paired.
    flows = collections.defaultdict(lambda: {"s": 0, "f": 0})
    asyncs = collections.defaultdict(list)
    for e in events:
        if e["ph"] in ("s", "f"):
            flows[(e.get("cat"), e["name"], e.get("id"))][e["ph"]] += 1
            if e["ph"] == "f" and e.get("bp") != "e":
                fail("flow end without bp 'e'")
        elif e["ph"] in ("b", "e"):
            asyncs[(e["pid"], e.get("cat"), e["name"], e.get("id"))].append(e)
    for key, ends in flows.items():
        if ends["s"] != 1 or ends["f"] != 1:
            fail(f"flow {key} has {ends['s']} start(s) and {ends['f']} end(s)")
    for key, evs in asyncs.items():
        phases = sorted(e["ph"] for e in evs)
        if phases != ["b", "e"]:
            fail(f"async {key} has phases {phases}")
        elif [e for e in evs if e["ph"] == "e"][0]["ts"] < [e for e in evs if e["ph"] == "b"][0]["ts"]:
            fail(f"async {key} ends before it begins")

    # Op events carry the contract's args; every traced event lies in the window.
    steps = meta.get("steps")
    for e in events:
        a = e.get("args", {})
        if e["ph"] == "X" and e.get("cat") == "op":
            for key in ("op", "step", "phase", "iteration", "inputs", "flops", "bytes"):
                if key not in a:
                    fail(f"op {e['name']!r} has no arg {key}")
            if a.get("phase") not in ("forward", "loss", "backward"):
                fail(f"op {e['name']!r} has phase {a.get('phase')!r}")
            if not 0 <= a.get("step", -1) < steps:
                fail(f"op {e['name']!r} has step {a.get('step')} outside 0..{steps - 1}")
        if e["ph"] == "X" and e.get("cat") == "update" and a.get("wait_us", -1) < 0:
            fail(f"update {e['name']!r} has wait_us {a.get('wait_us')}")
        if "iteration" in a and a["iteration"] not in window:
            fail(f"{e['name']!r} ({e['ph']}) is from iteration {a['iteration']}, outside "
                 f"{first}:{last}")
    for pid in range(args.nodes):
        its = sorted(e["args"]["iteration"] for e in events
                     if e["pid"] == pid and e["ph"] == "X" and e.get("cat") == "iteration")
        if its != sorted(window):
            fail(f"node {pid} has iteration events {its}, expected {sorted(window)}")
        ops = {e["args"]["step"] for e in events
               if e["pid"] == pid and e["ph"] == "X" and e.get("cat") == "op"}
        if len(ops) != steps:
            fail(f"node {pid}: {len(ops)} distinct op steps traced of {steps}")

    # Buckets: every gradient in exactly one bucket, and one allreduce per bucket, node and
    # traced iteration, of the bucket's size.
    buckets = meta.get("buckets", [])
    grads = [g for b in buckets for g in b["param_grads"]]
    if sorted(grads) != list(range(meta.get("param_grads", -1))):
        fail(f"bucket gradients {sorted(grads)} do not cover 0..{meta.get('param_grads')} once")
    for b in buckets:
        if b["params"] != len(b["param_grads"]):
            fail(f"bucket {b['index']}: params {b['params']} != {len(b['param_grads'])}")
    by_index = {b["index"]: b for b in buckets}
    seen = collections.Counter()
    for e in events:
        if e["ph"] == "b" and e.get("cat") == "allreduce":
            a = e["args"]
            seen[(e["pid"], a["iteration"], a["bucket"])] += 1
            if a["bucket"] not in by_index or a["bytes"] != by_index[a["bucket"]]["bytes"]:
                fail(f"allreduce {e['name']!r}: bucket {a['bucket']} bytes {a['bytes']}")
            if e["name"] != f"allreduce bucket {a['bucket']}":
                fail(f"allreduce named {e['name']!r}")
            if not a.get("gbps", 0) >= 0:
                fail(f"allreduce {e['name']!r} has gbps {a.get('gbps')}")
    for pid in range(args.nodes):
        for it in window:
            for b in buckets:
                if seen[(pid, it, b["index"])] != 1:
                    fail(f"node {pid} iteration {it}: bucket {b['index']} has "
                         f"{seen[(pid, it, b['index'])]} allreduces")
    if buckets and not flows:
        fail("no flow arrows from gradients to allreduces")
    return report(errors, f"OK: {len(events)} events, {args.nodes} node(s), "
                          f"{len(buckets)} buckets, {len(flows)} flows")


def report(errors, ok_line=""):
    if errors:
        for message in errors[:20]:
            print("FAIL:", message)
        return 1
    print(ok_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
