"""What fit and partial_fit record, warn about and leave alone: issue-driven cases."""

import threading
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine

import skdam._runtime
import skdam._training
from skdam import DAMAutoencoder, DAMEmbedding
from skdam._runtime import _ThreadLimit, module_on
from skdam.datasets import make_linear_latent

ESTIMATORS = [DAMEmbedding, lambda **params: DAMAutoencoder(hidden_layer_sizes=(8,), **params)]
IDS = ["DAMEmbedding", "DAMAutoencoder"]


def test_moving_the_network_for_transform_leaves_module_on_the_cpu(low_rank_data):
    estimator = DAMEmbedding(random_state=0).fit(low_rank_data)
    moved = module_on(estimator.module_, torch.device("meta"))  # any device but the CPU
    assert {parameter.device.type for parameter in moved.parameters()} == {"meta"}
    assert {parameter.device.type for parameter in estimator.module_.parameters()} == {"cpu"}
    assert module_on(estimator.module_, torch.device("cpu")) is estimator.module_


def test_batch_size_is_the_one_training_used_across_partial_fit_calls():
    X = make_linear_latent(3300, 3, 10, noise=0.01, random_state=0)[0]
    estimator = DAMEmbedding(random_state=0).partial_fit(X[:3200])
    assert estimator.batch_size_ == 64  # 3200 rows / 50 steps
    estimator.partial_fit(X[3200:3240])  # 40 rows alone would resolve to 32
    assert estimator.batch_size_ == estimator._trainer.settings.batch_size == 64


def test_auto_batches_stop_at_256_rows_and_fit_s_epochs_at_50_steps(monkeypatch):
    X = make_linear_latent(13000, 3, 5, noise=0.01, random_state=0)[0]  # past 50 batches of 256
    steps = []
    original_error = skdam._training.batch_error
    monkeypatch.setattr(skdam._training, "batch_error", lambda *args, **kwargs: steps.append(1) or original_error(*args, **kwargs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs leave the gates unsettled
        estimator = DAMEmbedding(max_iter=2, random_state=0).fit(X)
    assert estimator.batch_size_ == 256 and len(steps) == 2 * 50
    steps.clear()
    DAMEmbedding(random_state=0).partial_fit(X)  # partial_fit's epoch is its whole chunk
    assert len(steps) == -(-13000 // 256)


@pytest.fixture
def process_wide_threads(monkeypatch):
    """torch's thread count as one process-wide value, as in non-OpenMP builds."""
    count = {"threads": 4}
    monkeypatch.setattr(torch, "get_num_threads", lambda: count["threads"])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: count.update(threads=n))
    return count


def test_concurrent_fits_do_not_restore_threads_another_still_limits(process_wide_threads):
    limit = _ThreadLimit(per_thread=False)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen_by_second = []

    def first():
        with limit(1):
            first_in.set()
            second_in.wait()
        first_out.set()

    def second():
        first_in.wait()
        with limit(1):
            second_in.set()
            first_out.wait()
            seen_by_second.append(torch.get_num_threads())  # the first fit has left

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen_by_second == [1]
    assert process_wide_threads["threads"] == 4


def test_per_thread_limits_restore_each_thread():
    limit, before, inside = _ThreadLimit(per_thread=True), torch.get_num_threads(), []

    def fit_in_a_thread():
        with limit(1):
            inside.append(torch.get_num_threads())
        inside.append(torch.get_num_threads())

    thread = threading.Thread(target=fit_in_a_thread)
    thread.start()
    thread.join(timeout=10)
    assert inside == [1, before] and torch.get_num_threads() == before
    assert skdam._runtime.intra_op_threads.per_thread == torch.backends.openmp.is_available()


@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=IDS)
def test_read_only_input_gives_no_torch_warning(Estimator, low_rank_data):
    estimator = Estimator(random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(low_rank_data)
    X = low_rank_data.copy()
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embedding = estimator.transform(X)
        embedding.setflags(write=False)
        estimator.inverse_transform(embedding)
        estimator.score(X)
        estimator.score_samples(X)


def test_every_gate_open_on_a_bottleneck_as_wide_as_the_data_warns():
    X = np.random.RandomState(0).normal(size=(500, 4))  # 4 directions of ~25 % each
    with pytest.warns(UserWarning, match="All 4 gates stayed open: every one of X's 4 directions"):
        estimator = DAMEmbedding(random_state=0).fit(X)
    assert estimator.n_components_ == 4


def test_a_single_dimension_that_explains_the_data_gives_no_floor_warning():
    X = load_wine().data  # raw: the proline column carries 99.8 % of the variance
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*closed every gate it could", category=UserWarning)
        estimator = DAMEmbedding(random_state=0).fit(X)
    assert estimator.n_components_ == 1


def test_the_default_bottleneck_does_not_cap_the_dimension():
    X = make_linear_latent(3000, 70, 100, random_state=0)[0]
    estimator = DAMEmbedding(alpha=1e-4, random_state=0).fit(X)  # all 70 explain more
    assert estimator.max_components_ == 100
    assert estimator.n_components_ > 64


def test_a_small_first_chunk_does_not_fix_the_bottleneck_width(low_rank_data, capsys):
    estimator = DAMEmbedding(random_state=0, verbose=1).partial_fit(low_rank_data[:10])
    assert estimator.max_components_ == low_rank_data.shape[1]  # not 10
    estimator.partial_fit(low_rank_data[10:])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["DAMEmbedding epoch 1", "DAMEmbedding epoch 2"]


def test_moving_the_count_to_the_rule_gives_no_torch_warning():
    # Wine, scaled: the settled embedding keeps more gates than PCA's ratios above
    # alpha, so the count moves, and each move is recorded with the gate's beta.
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(load_wine().data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimator = DAMEmbedding(random_state=0).fit(X)
    assert estimator.n_components_ == 12  # PCA's ratios above 0.01; the gates settle on more
