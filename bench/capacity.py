#!/usr/bin/env python3
"""The capacity model of docs/scaling.md, computed from bench/cluster.sh's RESULT lines.

Usage: bench/capacity.py RESULTS... [--cores 8] [--db-cores 8] [--nats-cores 8]
                         [--db-disk-mbps 1000] [--nodes 1,3,10] [--shards 1,2,4] [--hit 1.0]

RESULTS are files holding the `RESULT cluster …` lines of runs with 1, 2 and 3 nodes (and,
optionally, one with `--cache-entries 0`, which gives what a cache miss costs). For each workload
and component (nodes, PostgreSQL, NATS) the CPU microseconds per request are modelled as
c(N) = c1 + b × (N - 1): c1 is the mean of the one-node runs; b, what each further node adds to a
request, comes from the runs that load only node 1 of N (`--load-nodes 1`: the request's own
node works as in a one-node run, the others only receive its invalidations and wake-ups), as the
mean of (c - c1) / (N - 1). Runs whose reads fell back to version checks (`version_checks` > 0:
the cache was not trusted) are left out. Without such runs, b is the least-squares slope over the
runs that load every node (a negative slope is taken as 0). Then, for N node machines of
`--cores` cores, M PostgreSQL shards of `--db-cores` cores and one NATS server of
`--nats-cores` cores:

    node-bound = N × cores / node(N)       db-bound = M × db_cores / pg(N)
    nats-bound = nats_cores / nats(N)      disk-bound (W3) = M × disk bandwidth /
                                           PostgreSQL's bytes written per set (WAL and pages)
    throughput = the least of the four

W3 is also given for one app, which lives on one shard (M = 1 whatever the shard count).
With --hit h < 1, W1 and W2 add (1 - h) × what a miss costs (from the cache-off run) to the
nodes' and PostgreSQL's per-request cost. Every core is counted as fully usable: plan for about
70 % of these figures.
"""

import argparse
import re
import sys


def parse(paths):
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("RESULT cluster "):
                    rows.append(dict(re.findall(r"(\w+)=(\S+)", line)))
    return rows


def fit(points):
    """Least-squares a + b·N over (N, cost) points; a negative slope becomes a flat mean."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx > 0 else 0.0
    if b < 0:
        return my, 0.0
    return my - b * mx, b


def human(x):
    if x >= 1e6:
        return f"{x / 1e6:.1f} M"
    if x >= 1e3:
        return f"{x / 1e3:.0f} k"
    return f"{x:.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--cores", type=float, default=8)
    ap.add_argument("--db-cores", type=float, default=8)
    ap.add_argument("--nats-cores", type=float, default=8)
    ap.add_argument("--db-disk-mbps", type=float, default=1000,
                    help="each shard's sustained disk write bandwidth, MB/s")
    ap.add_argument("--nodes", default="1,3,10")
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--hit", type=float, default=1.0)
    args = ap.parse_args()
    rows = parse(args.results)
    warm = [r for r in rows if r.get("cache") != "0" and r["workload"] in ("w1", "w2", "w3")
            and int(r.get("version_checks", "0")) == 0]
    cold = {r["workload"]: r for r in rows if r.get("cache") == "0"}
    if not warm:
        sys.exit("no RESULT cluster lines with the cache on")
    nodes = [int(x) for x in args.nodes.split(",")]
    shards = [int(x) for x in args.shards.split(",")]

    print("Per-request CPU (µs) as c1 + b × (N - 1):\n")
    print("| workload | nodes | PostgreSQL | NATS | PostgreSQL disk writes, bytes | b from |")
    print("|---|---|---|---|---|---|")
    fits = {}
    for w in ("w1", "w2", "w3"):
        pts = [r for r in warm if r["workload"] == w]
        ones = [r for r in pts if r["nodes"] == "1"]
        extra = [r for r in pts if int(r["nodes"]) > 1 and r.get("loaded") == "1"]
        split = [r for r in pts if r.get("loaded", r["nodes"]) == r["nodes"]]
        if not ones:
            continue
        fits[w] = {}
        cells = []
        for comp in ("node_us", "pg_us", "nats_us", "pg_write_bytes_per_req"):
            c1 = sum(float(r[comp]) for r in ones) / len(ones)
            if extra:
                b = sum((float(r[comp]) - c1) / (int(r["nodes"]) - 1) for r in extra) / len(extra)
            else:
                b = fit([(int(r["nodes"]), float(r[comp])) for r in split])[1]
            b = max(b, 0.0)
            fits[w][comp] = (c1, b)
            cells.append(f"{c1:.1f} + {b:.1f} (N − 1)" if comp != "pg_write_bytes_per_req" else f"{c1:.0f} + {b:.0f} (N − 1)")
        src = f"{len(extra)} runs loading node 1 of N" if extra else f"slope over {len(split)} runs loading every node"
        print(f"| {w} | " + " | ".join(cells) + f" | {src} |")

    def cost(w, comp, n):
        a, b = fits[w][comp]
        c = a + b * (n - 1)
        if w in ("w1", "w2") and args.hit < 1 and w in cold and comp in ("node_us", "pg_us"):
            # A miss costs what the cache-off run cost, less what a hit costs.
            c += (1 - args.hit) * max(float(cold[w][comp]) - c, 0.0)
        return c

    unit = {"w1": "req/s", "w2": "req/s (×100 profiles)", "w3": "sets/s"}
    print(f"\nCeilings: node machines of {args.cores:g} cores, PostgreSQL shards of {args.db_cores:g} cores, "
          f"one NATS server of {args.nats_cores:g} cores, {args.db_disk_mbps:g} MB/s of disk writes per shard, "
          f"read-cache hit ratio {args.hit:g}; each cell: throughput (the bound that binds: node / db / nats / disk).\n")
    head = "| workload | N | " + " | ".join(f"M = {m}" for m in shards) + " |"
    print(head)
    print("|" + "---|" * (2 + len(shards)))
    for w in fits:
        labels = [w] + ([f"{w}, one app"] if w == "w3" else [])
        for label in labels:
            for n in nodes:
                cells = []
                for m in shards:
                    shard_count = 1 if label.endswith("one app") else m
                    bounds = {
                        "node": n * args.cores * 1e6 / cost(w, "node_us", n),
                        "db": shard_count * args.db_cores * 1e6 / max(cost(w, "pg_us", n), 1e-9),
                        "nats": args.nats_cores * 1e6 / max(cost(w, "nats_us", n), 1e-9),
                    }
                    if w == "w3":  # reads write nothing; what PostgreSQL writes meanwhile is background
                        bounds["disk"] = (shard_count * args.db_disk_mbps * 1e6
                                          / max(cost(w, "pg_write_bytes_per_req", n), 1e-9))
                    which = min(bounds, key=bounds.get)
                    cells.append(f"{human(bounds[which])} ({which})")
                print(f"| {label} {unit[w]} | {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
