"""scikit-learn's common estimator checks, on small seeded instances."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdam import DAMAutoencoder, DAMEmbedding


@parametrize_with_checks(
    [
        DAMEmbedding(max_iter=20, random_state=0),
        DAMAutoencoder(hidden_layer_sizes=(8,), max_iter=20, random_state=0),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
