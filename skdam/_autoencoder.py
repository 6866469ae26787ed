"""DAMAutoencoder: the nonlinear gated autoencoder, for curved data."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from ._base import _BaseDAM
from ._unit_search import unit_search

#: Epochs a probe for one unit fewer or more may take once the gates have settled.
#: The default network gets a 3-turn helix from 3 units to 2 in 10 to 25 epochs.
PROBE_EPOCHS = 30


class DAMAutoencoder(_BaseDAM):
    """Nonlinear dimensionality reduction whose number of components is learned.

    An autoencoder whose bottleneck passes through a DiscriminAtive Masking gate.
    Each side is a linear path, warm-started from a truncated SVD, plus a
    multilayer perceptron added to it as a residual that starts at zero: training
    begins at PCA, learns the curvature PCA misses, and closes the gates of the
    units that explain less than ``alpha`` of the variance. Where the gates settle
    at or below what PCA achieves with as many units, the model is then offered
    one unit fewer or more at a time (see Notes).

    Parameters
    ----------
    n_components : "auto" or int, default="auto"
        ``"auto"`` discovers the dimension; an int ``k`` prunes until exactly ``k``
        gates remain.
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Hidden widths of the encoder's perceptron; the decoder mirrors them.
    activation : {"relu", "elu", "tanh", "logistic"}, default="tanh"
        Activation of the hidden layers.
    alpha : float, default=0.01
        Regularization strength: a unit stays open while it explains more than
        ``alpha`` of the total variance, as far as the network has learned to use
        it when training stops. Independent of the units of ``X`` and of
        ``max_components``.
    max_components : int, default=None
        Width of the gated bottleneck, the most components that can be kept.
        ``None`` does not cap the answer: at least 64 and twice the number of
        principal components that explain more than ``alpha``, within
        ``min(n_samples, n_features)``.
    min_components : int, default=1
        Gates that stay open however large ``alpha`` is.
    max_iter : int, default=200
        Most epochs.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` aims at 50 steps per epoch within
        ``[32, 65536]`` rows.
    learning_rate_init : float, default=3e-3
        Adam step size of the weights.
    tol : float, default=1e-2
        Improvement of the objective below which an epoch counts as no improvement.
    n_iter_no_change : int, default=3
        Training stops once the open gates, the gate's ``beta`` and the objective
        have settled for this many epochs in a row.
    early_stopping : bool, default=False
        Monitor a held-out ``validation_fraction`` of the rows and keep the best state.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` is True.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the batches through a local ``torch.Generator``.
    verbose : int, default=0
        Positive shows the progress of training, with the loss and the open gates:
        a bar on a terminal when tqdm is installed, one line per epoch otherwise.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where to train and transform; ``"auto"`` picks CUDA when available.
    mixed_precision : "auto" or bool, default="auto"
        Whether training computes its matrix products in bfloat16, keeping the
        weights, the gate and the loss in float32. ``"auto"`` turns it on where it
        pays: on a device with bfloat16 matrix units (a CPU with AMX, a CUDA GPU of
        compute capability 8.0 or more) and a training step of at least ``2**26``
        multiply-adds (batch rows times parameters). ``transform``,
        ``inverse_transform`` and ``score`` always compute in float32. Set False for
        results that do not depend on the machine's instruction set.

    Attributes
    ----------
    n_components_ : int
        The number of open gates: the discovered dimension.
    gate_values_ : ndarray of shape (max_components,)
        Value of every gate after training, zero for closed units.
    open_units_ : ndarray of shape (n_components,)
        Bottleneck units behind the columns of ``transform``'s output, most
        preferred first.
    max_components_ : int
        Width of the gated bottleneck actually used.
    batch_size_ : int
        Rows per mini-batch actually used.
    device_ : torch.device
        Device resolved from ``device``.
    mixed_precision_ : bool
        Whether training computed its matrix products in bfloat16.
    loss_curve_ : list of float
        Training objective after each epoch.
    reconstruction_error_curve_ : list of float
        Unexplained share of the training variance after each epoch.
    n_components_curve_ : list of int
        Open gates after each epoch; the epochs of a failed probe (see Notes)
        show one gate fewer, or one more, than the model kept.
    validation_error_curve_ : list of float
        Validation reconstruction error per epoch; only with ``early_stopping``.
    n_iter_ : int
        Epochs run.
    stop_reason_ : str
        ``"converged"``, ``"max_iter"``, ``"interrupted"``, or ``"partial_fit"``
        after :meth:`partial_fit`.
    module_ : skdam.nn.GatedAutoencoder
        The trained network, on the CPU and in eval mode.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features seen during fit, when they are all strings.

    See Also
    --------
    DAMEmbedding : The linear counterpart, PCA whose rank is learned.

    Notes
    -----
    The learned gate closes a unit once the network, as it is, can do without it,
    and that can miss both ways. On curved data whose linear span is small (a helix
    in R^3, a circle) nothing asks the network to learn a curved code while every
    linear unit is open, and the gates settle on the linear span. And when the
    decoder makes up for a closing gate faster than the error pushes back, a gate
    can close on a unit worth more than ``alpha``. So when ``n_components="auto"``,
    the settled model is compared with the best linear projection (PCA) on as many
    units, and on more:

    - if PCA with more units beats it in ``error + alpha * units``, the last closed
      unit is reopened, and kept once the error has fallen by more than ``alpha``;
    - if it is within ``alpha`` of PCA on as many units, the weakest open unit is
      closed and the network trains without it; the closure is kept once the error
      has risen by less than ``alpha``.

    Each probe trains for up to 30 epochs and is undone once its error stops
    falling fast enough (judged over ``2 * n_iter_no_change`` epochs); probes go on
    in the same direction while the condition holds, and share the ``max_iter``
    budget. On a 3-turn helix this finds 2 dimensions instead of 3; on data the
    perceptron already compresses beyond PCA (Fashion-MNIST) no probe runs.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    Examples
    --------
    >>> import numpy as np
    >>> from skdam import DAMAutoencoder
    >>> rng = np.random.RandomState(0)
    >>> t = rng.uniform(0, 3, size=(400, 1))
    >>> X = np.hstack([t, np.sin(t), np.cos(t), t ** 2 / 3])
    >>> autoencoder = DAMAutoencoder(random_state=0).fit(X)
    >>> autoencoder.transform(X).shape[1] == autoencoder.n_components_
    True
    """

    _parameter_constraints = {
        **_BaseDAM._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"relu", "elu", "tanh", "logistic"})],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        hidden_layer_sizes=(128, 128),
        activation="tanh",
        alpha=0.01,
        max_components=None,
        min_components=1,
        max_iter=200,
        batch_size="auto",
        learning_rate_init=3e-3,
        tol=1e-2,
        n_iter_no_change=3,
        early_stopping=False,
        validation_fraction=0.1,
        random_state=None,
        verbose=0,
        device="auto",
        mixed_precision="auto",
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.max_components = max_components
        self.min_components = min_components
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.mixed_precision = mixed_precision

    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if any(not isinstance(size, Integral) or size < 1 for size in sizes):
            raise ValueError(f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}.")
        return sizes

    def _activation(self):
        return self.activation

    def _after_settling(self, linear_errors):
        # Without a perceptron the model is linear: its settled gates already are
        # the answer a probe would give.
        if not self._hidden_layer_sizes():
            return None
        return unit_search(
            linear_errors=linear_errors, max_epochs=self.max_iter, probe_epochs=PROBE_EPOCHS, n_iter_no_change=self.n_iter_no_change
        )
