"""Output containers, persistence, out-of-core and distributed fitting, on real objects."""

import io
import os
import pickle

import joblib
import numpy as np
import pytest
import torch

from skdam import DAMAutoencoder, DAMEmbedding

#: Small, seeded settings: these tests are about plumbing, not about training.
SMALL = {DAMEmbedding: {"random_state": 0}, DAMAutoencoder: {"hidden_layer_sizes": (8,), "random_state": 0}}

#: Memory of each worker of the local dask cluster. A worker that has loaded torch,
#: scikit-learn and dask already holds about 650 MB of it.
WORKER_MEMORY_LIMIT = 1_000_000_000


@pytest.fixture(scope="module")
def fitted_embedding(low_rank_data):
    return DAMEmbedding(random_state=0).fit(low_rank_data)


@pytest.fixture(scope="module")
def chunk_trained(low_rank_data):
    """An autoencoder trained by partial_fit, so it carries optimiser state too."""
    estimator = DAMAutoencoder(hidden_layer_sizes=(16,), random_state=0)
    for _ in range(3):
        for chunk in np.array_split(low_rank_data, 4):
            estimator.partial_fit(chunk)
    return estimator


@pytest.fixture(scope="module")
def dask_client():
    """A client of two single-threaded worker processes on loopback, each held to
    ``WORKER_MEMORY_LIMIT``."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("dask.distributed")
    # The limit under test is the nanny's: it kills a worker that passes 95 % of it,
    # and with no retries the task then fails at once. Pausing the worker at 80 %
    # would stall it instead (the test would hang), and spilling would only write
    # our few small results to disk.
    settings = {f"distributed.worker.memory.{name}": False for name in ("target", "spill", "pause")}
    settings["distributed.scheduler.allowed-failures"] = 0
    with dask.config.set(settings), distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=WORKER_MEMORY_LIMIT,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        yield client


class _GlobalsRecorder(pickle.Unpickler):
    """Unpickler that notes every module whose objects a pickle refers to."""

    def __init__(self, file):
        super().__init__(file)
        self.modules = set()

    def find_class(self, module, name):
        self.modules.add(module)
        return super().find_class(module, name)


def _contains_torch_object(value):
    if isinstance(value, (torch.Tensor, torch.nn.Module, torch.device, torch.Generator, torch.optim.Optimizer)):
        return True
    if isinstance(value, dict):
        return any(_contains_torch_object(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_torch_object(item) for item in value)
    return False


# ------------------------------------------------------------ output containers


@pytest.mark.parametrize("container", ["pandas", "polars"])
@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
def test_set_output_gives_named_frames(container, Estimator, low_rank_data):
    library = pytest.importorskip(container)
    columns = [f"sensor{i}" for i in range(low_rank_data.shape[1])]
    frame = library.DataFrame(low_rank_data, schema=columns) if container == "polars" else library.DataFrame(low_rank_data, columns=columns)
    estimator = Estimator(**SMALL[Estimator], max_iter=15).set_output(transform=container).fit(frame)
    out = estimator.transform(frame)
    assert isinstance(out, library.DataFrame)
    prefix = Estimator.__name__.lower()
    assert list(out.columns) == [f"{prefix}{i}" for i in range(estimator.n_components_)]
    assert list(estimator.feature_names_in_) == columns


# ------------------------------------------------------------------ persistence


def test_saved_state_holds_no_torch_objects(chunk_trained):
    state = chunk_trained.__getstate__()
    assert not _contains_torch_object(state)
    assert isinstance(state["module_"]["state"]["gate.beta"], np.ndarray)


@pytest.mark.parametrize("trained", ["chunk_trained", "fitted_embedding"])
def test_pickle_and_joblib_round_trips(trained, request, low_rank_data, tmp_path):
    estimator = request.getfixturevalue(trained)
    expected = estimator.transform(low_rank_data)
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    for restored in (pickle.loads(pickle.dumps(estimator)), joblib.load(path)):
        np.testing.assert_array_equal(restored.transform(low_rank_data), expected)
        np.testing.assert_array_equal(restored.inverse_transform(expected), estimator.inverse_transform(expected))
        np.testing.assert_array_equal(restored.unexplained_variance_, estimator.unexplained_variance_)


def test_skops_trusts_only_skdam_types(chunk_trained, low_rank_data, tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    sio.dump(chunk_trained, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == ["skdam._autoencoder.DAMAutoencoder"]
    restored = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(restored.transform(low_rank_data), chunk_trained.transform(low_rank_data))


def test_partial_fit_resumes_exactly_after_a_round_trip(chunk_trained, low_rank_data):
    original = pickle.loads(pickle.dumps(chunk_trained))  # a private copy to train on
    restored = pickle.loads(pickle.dumps(chunk_trained))
    original.partial_fit(low_rank_data[:200])
    restored.partial_fit(low_rank_data[:200])
    # Optimiser moments, beta and the batch RNG all survived the round trip.
    np.testing.assert_array_equal(restored.transform(low_rank_data), original.transform(low_rank_data))


def test_model_saved_on_a_gpu_loads_without_one(chunk_trained, low_rank_data):
    state = chunk_trained.__getstate__()
    state["device_"] = "cuda:0"  # as written by a model trained on a GPU
    restored = DAMAutoencoder.__new__(DAMAutoencoder)
    restored.__setstate__(state)
    if not torch.cuda.is_available():
        assert restored.device_ == torch.device("cpu")
    np.testing.assert_allclose(restored.transform(low_rank_data), chunk_trained.transform(low_rank_data), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ out of core


@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
def test_partial_fit_on_chunks_finds_the_rank(Estimator, low_rank_data):
    estimator = Estimator(**SMALL[Estimator])
    for _ in range(20):
        for chunk in np.array_split(low_rank_data, 3):
            estimator.partial_fit(chunk)
    assert estimator.n_components_ == 4
    assert estimator.n_iter_ == 60 == len(estimator.n_components_curve_)
    assert estimator.r2_score(low_rank_data) > 0.99


def test_partial_fit_continues_a_fit(low_rank_data):
    estimator = DAMEmbedding(random_state=0).fit(low_rank_data)
    n_iter = estimator.n_iter_
    estimator.partial_fit(low_rank_data[:100])
    assert estimator.n_iter_ == n_iter + 1
    assert estimator.n_components_ == 4


def test_partial_fit_rejects_a_chunk_of_the_wrong_width(low_rank_data):
    estimator = DAMEmbedding(random_state=0).partial_fit(low_rank_data[:100])
    before = estimator.module_.state_dict()["gate.beta"].clone()
    with pytest.raises(ValueError, match="features"):
        estimator.partial_fit(low_rank_data[:100, :5])
    assert estimator.n_iter_ == 1
    assert torch.equal(estimator.module_.state_dict()["gate.beta"], before)


def test_incremental_on_a_dask_array(low_rank_data):
    dask_array = pytest.importorskip("dask.array")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = dask_array.from_array(low_rank_data, chunks=(150, low_rank_data.shape[1]))
    incremental = wrappers.Incremental(DAMEmbedding(random_state=0))
    for _ in range(15):
        incremental.partial_fit(X)
    assert incremental.estimator_.n_components_ == 4
    assert incremental.estimator_.n_iter_ == 15 * X.numblocks[0]
    embedding = incremental.transform(X).compute()
    assert embedding.shape == (low_rank_data.shape[0], 4)


# ------------------------------------------------------------------ distributed


def test_transform_of_a_dask_array_larger_than_a_worker(dask_client, chunk_trained):
    dask_array = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("dask.distributed")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    pytest.importorskip("resource", reason="the workers' peak memory needs the resource module")
    estimator = chunk_trained

    # The estimator travels to the workers as NumPy arrays and skdam classes: dask
    # needs no torch serialiser and no torch object in the task graph.
    recorder = _GlobalsRecorder(io.BytesIO(pickle.dumps(estimator)))
    recorder.load()
    assert recorder.modules and not [module for module in recorder.modules if module.split(".")[0] == "torch"]

    n_chunks, chunk_rows = 160, 32_768
    # Each block is drawn on a worker from its own seed, fixed in the graph: X never
    # exists whole anywhere, and any block can be drawn again here to check it.
    X = dask_array.random.default_rng(0).random(
        (n_chunks * chunk_rows, estimator.n_features_in_), chunks=(chunk_rows, -1)
    )
    embedding = X.map_blocks(
        estimator.transform,
        chunks=(X.chunks[0], (estimator.n_components_,)),
        meta=np.empty((0, 0), dtype=X.dtype),
    )
    # One row of column sums per block is all that comes back.
    block_sums = embedding.map_blocks(np.sum, axis=0, keepdims=True, chunks=((1,) * n_chunks, embedding.chunks[1]))

    def resident_memory():
        import psutil

        return psutil.Process().memory_info().rss

    def peak_resident_memory():
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # KiB on Linux

    dask_client.run(__import__, "skdam")  # torch and scikit-learn, before measuring
    libraries = max(dask_client.run(resident_memory).values())
    if libraries > 0.75 * WORKER_MEMORY_LIMIT:
        pytest.skip(f"the workers' libraries alone take {libraries / 1e6:.0f} MB of their {WORKER_MEMORY_LIMIT / 1e6:.0f} MB")
    worker_pids = dask_client.run(os.getpid)
    with distributed.get_task_stream(dask_client) as task_stream:
        sums = dask_client.compute(block_sums).result(timeout=300)

    # The blocks ran in both worker processes, no worker was killed for passing its
    # limit, and none ever held as much memory as X takes.
    assert {task["worker"] for task in task_stream.data} == set(worker_pids)
    assert len(task_stream.data) >= n_chunks
    assert os.getpid() not in worker_pids.values()
    assert dask_client.run(os.getpid) == worker_pids
    assert max(dask_client.run(peak_resident_memory).values()) < WORKER_MEMORY_LIMIT < X.nbytes

    assert sums.shape == (n_chunks, estimator.n_components_) and sums.dtype == X.dtype
    # transform is row-independent: a block transformed here, alone, gives the same bits.
    for block in (0, n_chunks // 2, n_chunks - 1):
        expected = estimator.transform(X.blocks[block].compute(scheduler="sync"))
        np.testing.assert_array_equal(sums[block], expected.sum(axis=0))
    np.testing.assert_array_equal(dask_client.compute(embedding.blocks[-1]).result(timeout=60), expected)
    # dask-ml's wrapper maps the same function over the blocks.
    head = X.blocks[:2]
    np.testing.assert_array_equal(
        dask_client.compute(wrappers.ParallelPostFit(estimator).transform(head)).result(timeout=60),
        dask_client.compute(embedding.blocks[:2]).result(timeout=60),
    )


def test_grid_search_on_a_local_dask_cluster(dask_client, low_rank_data):
    from sklearn.model_selection import GridSearchCV

    with joblib.parallel_backend("dask"):
        search = GridSearchCV(
            DAMEmbedding(random_state=0), {"alpha": [0.001, 0.01, 0.5]}, cv=2, n_jobs=-1
        ).fit(low_rank_data)
    worker_pids = set(dask_client.run(os.getpid).values())
    assert len(worker_pids) == 2
    assert search.cv_results_["mean_test_score"].shape == (3,)
    # alpha=0.5 keeps one dimension of four: a visibly worse reconstruction.
    assert search.cv_results_["mean_test_score"][2] < search.cv_results_["mean_test_score"][0]
    assert search.best_estimator_.n_components_ == 4



# ------------------------------------------------------------------ GPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
def test_cuda_fit_matches_the_contract(Estimator, low_rank_data):
    estimator = Estimator(**SMALL[Estimator], device="cuda").fit(low_rank_data)
    assert estimator.device_.type == "cuda"
    assert next(estimator.module_.parameters()).device.type == "cpu"  # lives on the CPU
    assert estimator.n_components_ == 4
    embedding = estimator.transform(low_rank_data)
    estimator.inverse_transform(embedding)
    assert isinstance(embedding, np.ndarray) and np.isfinite(embedding).all()
    assert next(estimator.module_.parameters()).device.type == "cpu"  # transform moved a copy
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_allclose(restored.transform(low_rank_data), embedding, rtol=1e-4, atol=1e-5)
