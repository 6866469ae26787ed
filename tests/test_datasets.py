import numpy as np
import pytest

from skdam.datasets import make_linear_latent, make_mlp_latent, make_quadratic_latent


@pytest.mark.parametrize("make", [make_linear_latent, make_mlp_latent, make_quadratic_latent])
def test_same_seed_same_data(make):
    first, first_latent = make(50, 3, 8, random_state=0)
    second, second_latent = make(50, 3, 8, random_state=0)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first_latent, second_latent)
    assert not np.array_equal(first, make(50, 3, 8, random_state=1)[0])


def test_quadratic_latent_is_a_qres_layer_of_its_latents():
    # Regressing X on the latents' monomials of degree <= 2 leaves nothing, while the
    # linear monomials alone leave a residual: the data are quadratic, not linear.
    X, latent = make_quadratic_latent(300, 4, 30, random_state=0)
    rows, columns = np.triu_indices(4)
    quadratic = latent[:, rows] * latent[:, columns]
    ones = np.ones((300, 1))

    def residual(design):
        coefficients = np.linalg.lstsq(design, X, rcond=None)[0]
        return np.linalg.norm(X - design @ coefficients) / np.linalg.norm(X - X.mean(axis=0))

    assert residual(np.hstack([ones, latent, quadratic])) < 1e-10
    assert residual(np.hstack([ones, latent])) > 0.1


def test_quadratic_latent_noise_is_relative_to_the_data_scale():
    clean = make_quadratic_latent(2000, 3, 10, random_state=0)[0]
    noisy = make_quadratic_latent(2000, 3, 10, noise=0.1, random_state=0)[0]
    ratio = np.sqrt((noisy - clean).var(axis=0).mean() / clean.var(axis=0).mean())
    assert ratio == pytest.approx(0.1, rel=0.1)
