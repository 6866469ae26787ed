"""Plots of a DAM fit as scikit-learn Display objects.

As in scikit-learn (``RocCurveDisplay``, ``LearningCurveDisplay``), ``from_estimator``
computes what to draw and calls ``plot``, which draws on a given or a new Axes and
keeps the Axes, the Figure and the artists as attributes ending in ``_``, so that a
caller can restyle them. matplotlib is optional and only imported when drawing.
"""

from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_array, check_is_fitted

#: Lower limit of the gate panel's y-axis: below 0, so that the markers of the closed
#: gates (drawn at 0) are whole and clear of the x-axis.
GATE_AXIS_BOTTOM = -0.06
#: Evenly spaced dimensions that ReconstructionDisplay tries by default, besides the
#: found dimension and its two neighbours.
DEFAULT_N_SPREAD_DIMENSIONS = 5

GATE_KINDS = ("both", "gates", "epochs")


def _import_pyplot(caller_name):
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"{caller_name} requires matplotlib. Install it with `pip install matplotlib` "
            "or `pip install 'skdam[plot]'`."
        ) from error
    return plt


def _estimator_name(estimator, name):
    return type(estimator).__name__ if name is None else name


class GateDisplay:
    """The gates of a fitted DAM estimator: which units stayed open, and when.

    Two panels. ``"gates"``: the value of every gate of the bottleneck after
    training, open units as blue bars and closed units as grey crosses at 0. A closed
    gate is exactly 0, so it has no bar to draw; a cross rather than a short bar keeps it
    apart from the weakest open gate, however small that one is.
    Units are numbered by their fixed offset, so the preferred units, which close
    last, are on the right. ``"epochs"``: the number of open gates after each epoch,
    with the training reconstruction error (the unexplained share of the variance,
    ``1 - R^2``) on a second y-axis.

    Create it with :meth:`from_estimator`; all parameters are stored as attributes.

    Parameters
    ----------
    gate_values : ndarray of shape (max_components,)
        Value of every gate, 0 for closed units (the estimator's ``gate_values_``).
    n_components_curve : array-like of shape (n_epochs,)
        Open gates after each epoch (``n_components_curve_``).
    reconstruction_error_curve : array-like of shape (n_epochs,)
        Training reconstruction error after each epoch
        (``reconstruction_error_curve_``).
    name : str, default=None
        Name of the estimator, used in the titles.

    Attributes
    ----------
    ax_ : matplotlib Axes or ndarray of two Axes
        The Axes drawn on: an array ``[gates, epochs]`` for ``kind="both"``, a single
        Axes otherwise (as ``matplotlib.pyplot.subplots`` returns them).
    gates_ax_ : matplotlib Axes or None
        The Axes with the gate values; None when not drawn.
    epochs_ax_ : matplotlib Axes or None
        The Axes with the open gates per epoch; None when not drawn.
    error_ax_ : matplotlib Axes or None
        The second y-axis of ``epochs_ax_``, with the reconstruction error.
    figure_ : matplotlib Figure
        The Figure of the Axes.
    open_bars_ : matplotlib BarContainer or None
        One bar per open unit, its height the gate value.
    closed_markers_ : matplotlib Line2D or None
        One grey cross at 0 per closed unit.
    n_components_line_ : matplotlib Line2D or None
        Open gates per epoch.
    reconstruction_error_line_ : matplotlib Line2D or None
        Reconstruction error per epoch.

    See Also
    --------
    ReconstructionDisplay : Reconstruction error against the number of dimensions,
        beside PCA.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from skdam import DAMEmbedding, GateDisplay
    >>> from skdam.datasets import make_linear_latent
    >>> X, _ = make_linear_latent(300, 3, 12, random_state=0)
    >>> embedding = DAMEmbedding(random_state=0).fit(X)
    >>> display = GateDisplay.from_estimator(embedding)
    >>> len(display.open_bars_.patches)
    3
    >>> plt.close("all")
    """

    def __init__(self, *, gate_values, n_components_curve, reconstruction_error_curve, name=None):
        self.gate_values = gate_values
        self.n_components_curve = n_components_curve
        self.reconstruction_error_curve = reconstruction_error_curve
        self.name = name

    @classmethod
    def from_estimator(cls, estimator, *, kind="both", ax=None, name=None):
        """Draw the gates of a fitted :class:`DAMEmbedding` or :class:`DAMAutoencoder`.

        Parameters
        ----------
        estimator : DAMEmbedding or DAMAutoencoder
            A fitted estimator.
        kind : {"both", "gates", "epochs"}, default="both"
            Which panels to draw: the gate values, the open gates per epoch, or both
            side by side.
        ax : matplotlib Axes or sequence of two Axes, default=None
            Where to draw: two Axes for ``kind="both"``, one otherwise. None creates
            a new figure.
        name : str, default=None
            Name used in the titles; the estimator's class name by default.

        Returns
        -------
        display : GateDisplay
        """
        _import_pyplot(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator, "gate_values_")
        display = cls(
            gate_values=np.asarray(estimator.gate_values_, dtype=np.float64),
            n_components_curve=np.asarray(estimator.n_components_curve_),
            reconstruction_error_curve=np.asarray(estimator.reconstruction_error_curve_, dtype=np.float64),
            name=_estimator_name(estimator, name),
        )
        return display.plot(ax=ax, kind=kind)

    def plot(self, ax=None, *, kind="both", name=None):
        """Draw the panels.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of two Axes, default=None
            Where to draw: two Axes ``[gates, epochs]`` for ``kind="both"``, one
            otherwise. None creates a new figure.
        kind : {"both", "gates", "epochs"}, default="both"
            Which panels to draw.
        name : str, default=None
            Overrides the ``name`` given at construction.

        Returns
        -------
        display : GateDisplay
            The display itself, with ``ax_``, ``figure_`` and the artists set.
        """
        plt = _import_pyplot(f"{type(self).__name__}.plot")
        if kind not in GATE_KINDS:
            raise ValueError(f"kind must be one of {GATE_KINDS}, got {kind!r}.")
        name = self.name if name is None else name
        n_panels = 2 if kind == "both" else 1
        if ax is None:
            _, ax = plt.subplots(1, n_panels, figsize=(5.5 * n_panels, 3.8), layout="constrained")
        axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
        if axes.size != n_panels:
            raise ValueError(f'kind="{kind}" draws on {n_panels} Axes, got {axes.size}.')

        self.gates_ax_ = self.epochs_ax_ = self.error_ax_ = None
        self.open_bars_ = self.closed_markers_ = None
        self.n_components_line_ = self.reconstruction_error_line_ = None
        if kind in ("both", "gates"):
            self.gates_ax_ = axes[0]
            self._plot_gates(self.gates_ax_, name)
        if kind in ("both", "epochs"):
            self.epochs_ax_ = axes[-1]
            self._plot_epochs(self.epochs_ax_, name)
        self.ax_ = axes if n_panels == 2 else axes[0]
        self.figure_ = axes[0].figure
        return self

    def _plot_gates(self, ax, name):
        gate_values = np.asarray(self.gate_values, dtype=np.float64)
        units = np.arange(gate_values.size)
        is_open = gate_values > 0
        self.open_bars_ = ax.bar(units[is_open], gate_values[is_open], color="tab:blue", label="open")
        (self.closed_markers_,) = ax.plot(
            units[~is_open], np.zeros((~is_open).sum()), linestyle="none", marker="x", color="dimgray", label="closed"
        )
        title = f"{is_open.sum()} of {gate_values.size} gates open"
        ax.set(
            xlabel="bottleneck unit (higher = preferred)",
            ylabel="gate value",
            ylim=(GATE_AXIS_BOTTOM, 1.05),
            xlim=(-0.8, gate_values.size - 0.2),
            title=f"{name}: {title}" if name else title,
        )
        ax.legend(handles=[self.open_bars_, self.closed_markers_], loc="upper left")

    def _plot_epochs(self, ax, name):
        n_open = np.asarray(self.n_components_curve)
        epochs = np.arange(1, n_open.size + 1)
        (self.n_components_line_,) = ax.plot(epochs, n_open, color="tab:blue", marker=".", label="open gates")
        ax.set_xlabel("epoch")
        # The colour of each y-axis names its curve: no legend to hide the curves.
        ax.set_ylabel("open gates", color="tab:blue")
        ax.tick_params(axis="y", colors="tab:blue")
        ax.set_ylim(0, max(1, n_open.max(initial=1)) * 1.05)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_title(f"{name}: open gates per epoch" if name else "open gates per epoch")
        self.error_ax_ = ax.twinx()
        (self.reconstruction_error_line_,) = self.error_ax_.plot(
            epochs,
            np.asarray(self.reconstruction_error_curve, dtype=np.float64),
            color="tab:orange",
            marker=".",
            label="reconstruction error",
        )
        self.error_ax_.set_ylabel("reconstruction error (1 - R²)", color="tab:orange")
        self.error_ax_.tick_params(axis="y", colors="tab:orange")
        self.error_ax_.set_ylim(bottom=0)


class ReconstructionDisplay:
    """Reconstruction error against the number of dimensions, beside PCA.

    The estimator is refitted with ``n_components=k`` (DAM as a pruning schedule to
    exactly ``k`` dimensions) for a few ``k``, and PCA is evaluated at the same
    dimensions on the same data. A star marks the dimension the estimator finds by
    itself (``n_components="auto"``). The error is the unexplained share of the
    variance, ``1 - R^2`` (``1 - estimator.score(X)``), on the data that was fitted.

    Create it with :meth:`from_estimator`; all parameters are stored as attributes.

    Parameters
    ----------
    n_components : ndarray of shape (n_points,)
        Dimensions of the refitted estimators, increasing.
    reconstruction_error : ndarray of shape (n_points,)
        The estimator's unexplained variance at each of ``n_components``.
    pca_reconstruction_error : ndarray of shape (n_points,)
        PCA's unexplained variance at each of ``n_components``.
    found_n_components : int, default=None
        The dimension the estimator found with ``n_components="auto"``.
    found_reconstruction_error : float, default=None
        Its unexplained variance at that dimension.
    name : str, default=None
        Name of the estimator, used in the legend and the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The Axes drawn on.
    figure_ : matplotlib Figure
        The Figure of the Axes.
    line_ : matplotlib Line2D
        The estimator's error at each dimension.
    pca_line_ : matplotlib Line2D
        PCA's error at the same dimensions.
    found_marker_ : matplotlib Line2D or None
        The star at the found dimension; None when there is none.

    See Also
    --------
    GateDisplay : The gates of one fitted estimator.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from skdam import DAMEmbedding, ReconstructionDisplay
    >>> from skdam.datasets import make_linear_latent
    >>> X, _ = make_linear_latent(300, 3, 12, random_state=0)
    >>> display = ReconstructionDisplay.from_estimator(
    ...     DAMEmbedding(random_state=0), X, n_components=[2, 4])
    >>> display.found_n_components
    3
    >>> display.n_components.tolist()
    [2, 4]
    >>> plt.close("all")
    """

    def __init__(
        self,
        *,
        n_components,
        reconstruction_error,
        pca_reconstruction_error,
        found_n_components=None,
        found_reconstruction_error=None,
        name=None,
    ):
        self.n_components = n_components
        self.reconstruction_error = reconstruction_error
        self.pca_reconstruction_error = pca_reconstruction_error
        self.found_n_components = found_n_components
        self.found_reconstruction_error = found_reconstruction_error
        self.name = name

    @classmethod
    def from_estimator(cls, estimator, X, *, n_components=None, ax=None, name=None):
        """Refit the estimator at several dimensions and compare with PCA.

        Each dimension costs one fit of a clone of ``estimator``, plus one fit with
        ``n_components="auto"`` for the found dimension; PCA is fitted once.

        Parameters
        ----------
        estimator : DAMEmbedding or DAMAutoencoder
            The estimator to refit, fitted or not; it is not modified. Its other
            parameters (``alpha``, ``max_iter``, ``random_state``...) are kept.
        X : array-like of shape (n_samples, n_features)
            Data to fit and to reconstruct.
        n_components : list of int, default=None
            Dimensions to try. None tries about eight: five spread evenly from 1 to
            twice the found dimension, and the found dimension with its two
            neighbours. A refit that ends with another number of open gates than
            asked (the pruning schedule can stall, or run out of ``max_iter``) is
            plotted at the dimension it reached.
        ax : matplotlib Axes, default=None
            Where to draw; None creates a new figure.
        name : str, default=None
            Name used in the legend; the estimator's class name by default.

        Returns
        -------
        display : ReconstructionDisplay
        """
        _import_pyplot(f"{cls.__name__}.from_estimator")
        X = check_array(X, dtype=[np.float64, np.float32])
        largest = min(X.shape)
        if getattr(estimator, "max_components", None) is not None:
            largest = min(largest, estimator.max_components)

        # Check a given list before the first, possibly long, fit.
        if n_components is not None:
            n_components = _check_dimensions(n_components, largest)
        found = clone(estimator).set_params(n_components="auto").fit(X)
        if n_components is None:
            n_components = _default_dimensions(found.n_components_, largest)

        reached, errors = [], []
        for k in n_components:
            refitted = clone(estimator).set_params(n_components=int(k)).fit(X)
            reached.append(refitted.n_components_)
            errors.append(1 - refitted.score(X))
        order = np.argsort(reached, kind="stable")
        reached = np.asarray(reached)[order]
        pca = PCA(n_components=int(reached.max()), svd_solver="full").fit(X)
        display = cls(
            n_components=reached,
            reconstruction_error=np.asarray(errors, dtype=np.float64)[order],
            pca_reconstruction_error=np.array([_pca_unexplained_variance(pca, X, k) for k in reached]),
            found_n_components=found.n_components_,
            found_reconstruction_error=1 - found.score(X),
            name=_estimator_name(estimator, name),
        )
        return display.plot(ax=ax)

    def plot(self, ax=None, *, name=None):
        """Draw the two curves and the found dimension.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; None creates a new figure.
        name : str, default=None
            Overrides the ``name`` given at construction.

        Returns
        -------
        display : ReconstructionDisplay
            The display itself, with ``ax_``, ``figure_`` and the artists set.
        """
        plt = _import_pyplot(f"{type(self).__name__}.plot")
        name = (self.name if name is None else name) or "estimator"
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        # PCA underneath, wide and light, so that an estimator that matches it
        # (the linear one does) stays visible on top.
        (self.pca_line_,) = ax.plot(
            self.n_components,
            self.pca_reconstruction_error,
            marker="s",
            markersize=9,
            linewidth=4,
            color="silver",
            label="PCA",
        )
        (self.line_,) = ax.plot(self.n_components, self.reconstruction_error, marker="o", color="tab:blue", label=name)
        self.found_marker_ = None
        if self.found_n_components is not None:
            ax.axvline(self.found_n_components, color="tab:red", linestyle=":", linewidth=1)
            (self.found_marker_,) = ax.plot(
                [self.found_n_components],
                [self.found_reconstruction_error],
                marker="*",
                markersize=16,
                linestyle="none",
                color="tab:red",
                label=f'{name}, n_components="auto": {self.found_n_components}',
            )
        ax.set(
            xlabel="number of dimensions",
            ylabel="reconstruction error (1 - R²)",
            title="Reconstruction error against dimension",
        )
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def _default_dimensions(found, largest):
    spread = np.linspace(1, max(2 * found, found + 2), DEFAULT_N_SPREAD_DIMENSIONS).round()
    dimensions = np.concatenate([spread, [found - 1, found, found + 1]])
    return np.unique(np.clip(dimensions, 1, largest)).astype(int).tolist()


def _check_dimensions(n_components, largest):
    dimensions = np.unique(np.asarray(n_components, dtype=object).ravel())
    if dimensions.size == 0:
        raise ValueError("n_components must list at least one dimension.")
    for k in dimensions:
        if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= largest:
            raise ValueError(
                f"n_components must hold integers in [1, {largest}] (at most min(n_samples, "
                f"n_features) and the estimator's max_components), got {k!r}."
            )
    return [int(k) for k in dimensions]


def _pca_unexplained_variance(pca, X, n_components):
    """``1 - R^2`` of PCA restricted to its first ``n_components`` axes.

    PCA's axes are nested, so the first ``k`` axes of one fit are ``PCA(k)``'s.
    """
    components = pca.components_[:n_components]
    centred = X - pca.mean_
    residual = centred - (centred @ components.T) @ components
    total = np.square(centred, dtype=np.float64).sum()
    return float(np.square(residual, dtype=np.float64).sum() / total) if total > 0 else 0.0
