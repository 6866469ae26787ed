import pytest

from skdam.datasets import make_linear_latent, make_mlp_latent


@pytest.fixture(scope="module")
def low_rank_data():
    """Exactly 4 dimensions in 30."""
    return make_linear_latent(600, 4, 30, random_state=0)[0]


@pytest.fixture(scope="module")
def curved_data():
    """A 2-dimensional curved manifold in 12 dimensions."""
    return make_mlp_latent(800, 2, 12, hidden_size=32, random_state=0)[0]
