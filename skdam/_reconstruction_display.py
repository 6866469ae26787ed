"""ReconstructionDisplay: the error against the number of dimensions, and each unit's gain.

matplotlib is optional and only imported when drawing; the numbers come from the
fitted ``unexplained_variance_`` and from :func:`skdam.reconstruction_curve`.
"""

import numpy as np
from sklearn.utils.validation import check_array, check_is_fitted

from ._plot import _estimator_name, _import_pyplot, _panel_axes
from ._reconstruction_curve import reconstruction_curve

RECONSTRUCTION_KINDS = ("both", "error", "gains")


def _measured_curve(estimator):
    """The fit's own curve: the counts it measured, and the errors there.

    Entries the fit did not measure are NaN; an adaptation the fit had no budget
    left for reads as infinite. Neither has a point to draw.
    """
    check_is_fitted(estimator, "unexplained_variance_")
    errors = np.asarray(estimator.unexplained_variance_, dtype=np.float64)
    measured = np.flatnonzero(np.isfinite(errors))
    return measured, errors[measured]


def _with_gaps(n_components, errors):
    """The points, with a NaN between two that are not consecutive counts."""
    n_components = np.asarray(n_components, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    gaps = np.flatnonzero(np.diff(n_components) > 1) + 1
    return np.insert(n_components, gaps, np.nan), np.insert(errors, gaps, np.nan)


def _gains(n_components, errors):
    """``e(k - 1) - e(k)`` at each ``k`` whose neighbour below was measured too."""
    n_components, errors = np.asarray(n_components), np.asarray(errors, dtype=np.float64)
    has_lower = np.diff(n_components) == 1
    return n_components[1:][has_lower], (errors[:-1] - errors[1:])[has_lower]


class ReconstructionDisplay:
    """Reconstruction error against the number of dimensions, and the rule behind the count.

    The error is the unexplained share of the variance, ``1 - R^2``. Two panels.

    ``"error"``: the curve the fit itself measured, its ``unexplained_variance_``
    (entry ``k``: the error with ``k`` units once the network adapted to them), with
    a star at the estimator's ``n_components_``. For :class:`DAMEmbedding` it holds
    every ``k``, PCA's closed form; for :class:`DAMAutoencoder` only the counts the
    fit measured around its answer. Drawing it refits nothing. Given data ``X``, the
    panel adds the curve of :func:`reconstruction_curve`: the estimator refitted on
    ``X`` with ``n_components=k`` for a few ``k``, beside PCA fitted on ``X``; the
    star then shows the estimator as fitted, scored on ``X``.

    ``"gains"``: what each unit is worth, ``e(k - 1) - e(k)`` on the measured curve,
    against ``alpha``. A unit is kept when its gain is above ``alpha``, so the count
    for another ``alpha`` can be read off this panel where the curve was measured
    (everywhere for :class:`DAMEmbedding`).

    Create it with :meth:`from_estimator`; all parameters are stored as attributes.

    Parameters
    ----------
    measured_n_components : ndarray of shape (n_measured,)
        The counts the fit measured its error at, increasing (0 included).
    measured_reconstruction_error : ndarray of shape (n_measured,)
        The fit's error at each of them, from ``unexplained_variance_``: on the
        held-out rows where the fit held rows out (``early_stopping_``), else the
        training rows.
    alpha : float, default=None
        The estimator's ``alpha``, drawn as the threshold of the gains.
    n_components : ndarray of shape (n_points,), default=None
        Dimensions of the refitted estimators, increasing; None without refits.
    reconstruction_error : ndarray of shape (n_points,), default=None
        The refitted estimators' unexplained variance at each of ``n_components``.
    pca_reconstruction_error : ndarray of shape (n_points,), default=None
        PCA's unexplained variance at each of ``n_components``.
    found_n_components : int, default=None
        The number of dimensions of the fitted estimator (its ``n_components_``).
    found_reconstruction_error : float, default=None
        The fitted estimator's unexplained variance: measured by the fit, or on the
        data shown when there are refits.
    name : str, default=None
        Name of the estimator, used in the legend.

    Attributes
    ----------
    ax_ : matplotlib Axes or ndarray of two Axes
        The Axes drawn on: an array ``[error, gains]`` for ``kind="both"``, a single
        Axes otherwise.
    error_ax_ : matplotlib Axes or None
        The Axes with the error curves; None when not drawn.
    gains_ax_ : matplotlib Axes or None
        The Axes with the gains against ``alpha``; None when not drawn.
    figure_ : matplotlib Figure
        The Figure of the Axes.
    measured_line_ : matplotlib Line2D or None
        The fit's measured error at each count it measured; its data has a NaN
        between two counts that are not consecutive, which breaks the line there.
    line_ : matplotlib Line2D or None
        The refitted estimators' error at each dimension; None without refits.
    pca_line_ : matplotlib Line2D or None
        PCA's error at the same dimensions; None without refits.
    found_marker_ : matplotlib Line2D or None
        The star at the fitted estimator's dimension; None when there is none.
    gain_bars_ : matplotlib BarContainer or None
        One bar per measured gain above 0, at the unit's count ``k``; kept units
        in blue, dropped ones in grey.
    alpha_line_ : matplotlib Line2D or None
        The horizontal line at ``alpha``.
    no_gain_markers_ : matplotlib Line2D or None
        A grey cross on the x-axis per measured unit that gained nothing or lost;
        None when every measured unit gained.

    See Also
    --------
    reconstruction_curve : The numbers of the refits, without matplotlib.
    GateDisplay : The gates of one fitted estimator.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from skdam import DAMEmbedding, ReconstructionDisplay
    >>> from skdam.datasets import make_linear_latent
    >>> X, _ = make_linear_latent(400, 3, 12, random_state=0)
    >>> embedding = DAMEmbedding(random_state=0).fit(X)
    >>> display = ReconstructionDisplay.from_estimator(embedding)  # no refit
    >>> display.found_n_components
    3
    >>> display.measured_n_components.tolist()  # every count, PCA's closed form
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    >>> plt.close("all")
    """

    def __init__(
        self,
        *,
        measured_n_components,
        measured_reconstruction_error,
        alpha=None,
        n_components=None,
        reconstruction_error=None,
        pca_reconstruction_error=None,
        found_n_components=None,
        found_reconstruction_error=None,
        name=None,
    ):
        self.measured_n_components = measured_n_components
        self.measured_reconstruction_error = measured_reconstruction_error
        self.alpha = alpha
        self.n_components = n_components
        self.reconstruction_error = reconstruction_error
        self.pca_reconstruction_error = pca_reconstruction_error
        self.found_n_components = found_n_components
        self.found_reconstruction_error = found_reconstruction_error
        self.name = name

    @classmethod
    def from_estimator(cls, estimator, X=None, *, n_components=None, kind="both", ax=None, name=None):
        """Draw a fitted estimator's measured error curve and the rule behind its count.

        Without ``X`` nothing is refitted: the curve is the estimator's
        ``unexplained_variance_``. With ``X``, :func:`reconstruction_curve` also
        refits a clone of ``estimator`` on ``X`` per dimension, and fits one PCA;
        the estimator itself is only scored on ``X``.

        Parameters
        ----------
        estimator : DAMEmbedding or DAMAutoencoder
            A fitted estimator; it is not modified. Its clones keep its other
            parameters (``alpha``, ``max_iter``, ``random_state``...).
        X : array-like of shape (n_samples, n_features), default=None
            Data to refit on and to reconstruct. None draws only what the fit
            measured.
        n_components : array-like of int, default=None
            Dimensions to refit at, with ``X`` only. None tries about eight around
            the estimator's ``n_components_`` (see :func:`reconstruction_curve`).
        kind : {"both", "error", "gains"}, default="both"
            Which panels to draw: the error curves, the gains against ``alpha``, or
            both side by side.
        ax : matplotlib Axes or sequence of two Axes, default=None
            Where to draw: two Axes for ``kind="both"``, one otherwise. None creates
            a new figure.
        name : str, default=None
            Name used in the legend; the estimator's class name by default.

        Returns
        -------
        display : ReconstructionDisplay
            The display, drawn.
        """
        _import_pyplot(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator, "n_components_")
        measured, measured_errors = _measured_curve(estimator)
        found = int(estimator.n_components_)
        refits = {}
        if X is None:
            if n_components is not None:
                raise ValueError("n_components lists the dimensions to refit at, on X: pass X too, or leave it None.")
            if measured.size < 2:
                raise ValueError(
                    f"This {type(estimator).__name__} measured its error with no unit count but 0 (after "
                    "partial_fit, or when training ran out of max_iter before the gates settled): pass X "
                    "to draw the errors of refits instead."
                )
            found_error = float(measured_errors[measured == found][0]) if found in measured else None
        else:
            X = check_array(X, dtype=[np.float64, np.float32])
            reached, errors, pca_errors = reconstruction_curve(estimator, X, n_components=n_components)
            refits = dict(n_components=reached, reconstruction_error=errors, pca_reconstruction_error=pca_errors)
            found_error = 1 - estimator.r2_score(X)
        display = cls(
            measured_n_components=measured,
            measured_reconstruction_error=measured_errors,
            alpha=float(estimator.alpha),
            found_n_components=found,
            found_reconstruction_error=found_error,
            name=_estimator_name(estimator, name),
            **refits,
        )
        return display.plot(ax=ax, kind=kind)

    def plot(self, ax=None, *, kind="both", name=None):
        """Draw the panels.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of two Axes, default=None
            Where to draw: two Axes ``[error, gains]`` for ``kind="both"``, one
            otherwise. None creates a new figure.
        kind : {"both", "error", "gains"}, default="both"
            Which panels to draw.
        name : str, default=None
            Overrides the ``name`` given at construction.

        Returns
        -------
        display : ReconstructionDisplay
            The display itself, with ``ax_``, ``figure_``, the Axes of each panel and
            their artists set (None for what is not drawn).
        """
        axes = _panel_axes(ax, kind, RECONSTRUCTION_KINDS, f"{type(self).__name__}.plot", panel_size=(5.8, 4))
        name = (self.name if name is None else name) or "estimator"

        self.error_ax_ = self.gains_ax_ = None
        self.measured_line_ = self.line_ = self.pca_line_ = self.found_marker_ = None
        self.gain_bars_ = self.alpha_line_ = self.no_gain_markers_ = None
        if kind in ("both", "error"):
            self.error_ax_ = axes[0]
            self._plot_errors(self.error_ax_, name)
        if kind in ("both", "gains"):
            self.gains_ax_ = axes[-1]
            self._plot_gains(self.gains_ax_, name)
        self.ax_ = axes if axes.size == 2 else axes[0]
        self.figure_ = axes[0].figure
        return self

    def _plot_errors(self, ax, name):
        if self.n_components is not None:
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
        # A gap between measured counts breaks the line: the error there is unknown.
        counts, errors = _with_gaps(self.measured_n_components, self.measured_reconstruction_error)
        (self.measured_line_,) = ax.plot(
            counts,
            errors,
            marker="o",
            color="tab:green",
            label=f"{name} as measured by the fit",
        )
        if self.n_components is not None:
            (self.line_,) = ax.plot(
                self.n_components,
                self.reconstruction_error,
                marker="o",
                color="tab:blue",
                label=f"{name} refitted at each dimension",
            )
        if self.found_n_components is not None:
            ax.axvline(self.found_n_components, color="tab:red", linestyle=":", linewidth=1)
            if self.found_reconstruction_error is not None:
                (self.found_marker_,) = ax.plot(
                    [self.found_n_components],
                    [self.found_reconstruction_error],
                    marker="*",
                    markersize=16,
                    linestyle="none",
                    color="tab:red",
                    label=f"{name} as fitted: {self.found_n_components} dimensions",
                )
        ax.set(
            xlabel="number of dimensions",
            ylabel="reconstruction error (1 - R²)",
            title="Reconstruction error against dimension",
        )
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()

    def _plot_gains(self, ax, name):
        units, gains = _gains(self.measured_n_components, self.measured_reconstruction_error)
        positive = gains > 0
        # Gains span decades (half the variance for the first unit, 1e-6 for noise):
        # a log scale shows them all against alpha; a unit worth nothing has no bar.
        kept = units <= (np.inf if self.found_n_components is None else self.found_n_components)
        colors = np.where(kept, "tab:blue", "silver")[positive].tolist()
        self.gain_bars_ = ax.bar(units[positive], gains[positive], color=colors, log=True)
        if self.alpha is not None:
            self.alpha_line_ = ax.axhline(self.alpha, color="tab:red", linestyle="--", label=f"alpha = {self.alpha:g}")
        ax.set_yscale("log")
        if positive.any() and self.alpha is not None:
            # Gains of a unit worth nothing are ~1e-16; show two decades below alpha at most.
            ax.set_ylim(bottom=max(gains[positive].min(), self.alpha / 100) / 2)
        # A measured unit that gained nothing, or lost, has no bar on a log scale: a
        # cross on the x-axis says it was measured. Only where there is one: an
        # empty unclipped line collapses a constrained layout's Axes to nothing.
        if (~positive).any():
            (self.no_gain_markers_,) = ax.plot(
                units[~positive],
                np.full((~positive).sum(), ax.get_ylim()[0]),
                linestyle="none",
                marker="x",
                color="dimgray",
                clip_on=False,
                label="no gain",
            )
        ax.set(
            xlabel="unit k",
            ylabel="gain e(k-1) - e(k)",
            title=f"{name}: units kept above alpha" if name else "units kept above alpha",
        )
        ax.xaxis.get_major_locator().set_params(integer=True)
        handles = [self.alpha_line_] if self.alpha_line_ is not None else []
        if positive.any():
            from matplotlib.patches import Patch  # matplotlib is imported by now

            handles += [Patch(color="tab:blue", label="kept"), Patch(color="silver", label="dropped")]
        if self.no_gain_markers_ is not None:
            handles.append(self.no_gain_markers_)
        ax.legend(handles=handles, loc="upper right")
