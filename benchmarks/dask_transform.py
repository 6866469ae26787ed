"""transform of a dask array on a local cluster, against the same blocks in one process.

The array is drawn block by block from a seed (``dask.array.random``), so neither
side ever holds it whole: the in-process run computes the graph with dask's
synchronous scheduler, one block after another, in one thread; the cluster run
computes the same graph on worker processes of one thread each, whose memory limit is
smaller than the array. As in the test suite, dask's spilling and pausing are off: a
worker that has loaded torch sits near the 80 % at which dask would pause it, and only
the kill at 95 % of the limit applies. Both send back only one row of column sums per block, and
the script checks that the two agree bit for bit.

Usage: ``python benchmarks/dask_transform.py [--workers 2] [--gigabytes 1.26]
[--chunk-rows 32768] [--memory-limit 1GB] [--repeats 3]``
"""

import argparse
import os

import numpy as np
from _common import Report, command_line, limit_threads, machine_description, median_seconds

N_FEATURES = 30


def _peak_resident_memory():
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes of one thread each")
    parser.add_argument("--gigabytes", type=float, default=1.26, help="size of the float64 array")
    parser.add_argument("--chunk-rows", type=int, default=32_768, help="rows per block")
    parser.add_argument("--memory-limit", default="1GB", help="memory limit of each worker")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    limit_threads(1)

    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    from skdam import DAMAutoencoder, DAMEmbedding
    from skdam.datasets import make_linear_latent

    report = Report("dask_transform")
    report(f"# transform of a dask array on a local cluster\n\n`{command_line()}`\n")
    report(f"Machine: {machine_description(1)}\n")

    n_chunks = max(1, round(args.gigabytes * 1e9 / (args.chunk_rows * N_FEATURES * 8)))
    X = da.random.default_rng(0).random((n_chunks * args.chunk_rows, N_FEATURES), chunks=(args.chunk_rows, -1))
    report(f"X: {X.shape[0]} x {N_FEATURES} float64, {X.nbytes / 1e9:.2f} GB in {n_chunks} blocks of {args.chunk_rows} rows; "
           f"{args.workers} workers of one thread, memory limit {args.memory_limit} each.\n")
    train = make_linear_latent(2000, 4, N_FEATURES, random_state=0)[0]
    estimators = {
        "DAMEmbedding()": DAMEmbedding(random_state=0).fit(train),
        "DAMAutoencoder()": DAMAutoencoder(random_state=0).fit(train),
    }

    def block_sums(estimator):
        embedding = X.map_blocks(
            estimator.transform,
            chunks=(X.chunks[0], (estimator.n_components_,)),
            meta=np.empty((0, 0), dtype=X.dtype),
        )
        return embedding.map_blocks(np.sum, axis=0, keepdims=True, chunks=((1,) * n_chunks, embedding.chunks[1]))

    rows = []
    no_pause_or_spill = {f"distributed.worker.memory.{name}": False for name in ("target", "spill", "pause")}
    with dask.config.set(no_pause_or_spill), LocalCluster(
        n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory_limit, host="127.0.0.1", dashboard_address=None
    ) as cluster, Client(cluster) as client:
        worker_pids = client.run(os.getpid)
        for name, estimator in estimators.items():
            graph = block_sums(estimator)
            in_process, _, expected = median_seconds(lambda: graph.compute(scheduler="sync"), args.repeats)
            client.compute(graph[:4 * args.workers]).result()  # workers load torch and the model
            on_cluster, _, sums = median_seconds(lambda: client.compute(graph).result(), args.repeats)
            if not np.array_equal(sums, expected):
                raise AssertionError(f"{name}: the cluster's block sums differ from the in-process ones")
            rows.append((name, in_process, on_cluster, on_cluster / in_process))
        if client.run(os.getpid) != worker_pids:
            raise AssertionError("a worker was restarted: it passed its memory limit")
        peak = max(client.run(_peak_resident_memory).values())

    report.table(["estimator", "in process, 1 thread (s)", f"cluster, {args.workers} workers (s)", "cluster / in process"],
                 rows, ["", ".2f", ".2f", ".2f"])
    report(f"Largest peak memory of a worker: {peak / 1e6:.0f} MB (the array: {X.nbytes / 1e6:.0f} MB).")
    report.save()


if __name__ == "__main__":  # the worker processes import this script
    main()
