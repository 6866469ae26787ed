"""GateDisplay, and what the displays share: plots of a DAM fit as Display objects.

As in scikit-learn (``RocCurveDisplay``, ``LearningCurveDisplay``), ``from_estimator``
computes what to draw and calls ``plot``, which draws on a given or a new Axes and
keeps the Axes, the Figure and the artists as attributes ending in ``_``, so that a
caller can restyle them. matplotlib is optional and only imported when drawing.
``ReconstructionDisplay`` (``_reconstruction_display.py``) draws the error curve the
fit measured (``unexplained_variance_``), and, given data, the refits of
:func:`reconstruction_curve` (``_reconstruction_curve.py``), which needs no
matplotlib, as scikit-learn's ``learning_curve`` feeds ``LearningCurveDisplay``.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted


#: Lower limit of the gate panel's y-axis: below 0, so that the markers of the closed
#: gates (drawn at 0) are whole and clear of the x-axis.
GATE_AXIS_BOTTOM = -0.06

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


def _axes_or_new_figure(ax, caller_name, **subplots_kwargs):
    """``ax``, or the Axes of a new figure when it is None; needs matplotlib."""
    plt = _import_pyplot(caller_name)
    if ax is None:
        _, ax = plt.subplots(layout="constrained", **subplots_kwargs)
    return ax


def _panel_axes(ax, kind, kinds, caller_name, panel_size):
    """The Axes of a display's panels, both (``kind="both"``) or one, checked."""
    if kind not in kinds:
        raise ValueError(f"kind must be one of {kinds}, got {kind!r}.")
    n_panels = 2 if kind == "both" else 1
    width, height = panel_size
    ax = _axes_or_new_figure(ax, caller_name, ncols=n_panels, figsize=(width * n_panels, height))
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if axes.size != n_panels:
        raise ValueError(f'kind="{kind}" draws on {n_panels} Axes, got {axes.size}.')
    return axes


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
            The display, drawn: its gate values and curves are the estimator's.
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
            The display itself, with ``ax_``, ``figure_``, the Axes of each panel
            and their artists set (None for a panel not drawn).
        """
        axes = _panel_axes(ax, kind, GATE_KINDS, f"{type(self).__name__}.plot", panel_size=(5.5, 3.8))
        name = self.name if name is None else name

        self.gates_ax_ = self.epochs_ax_ = self.error_ax_ = None
        self.open_bars_ = self.closed_markers_ = None
        self.n_components_line_ = self.reconstruction_error_line_ = None
        if kind in ("both", "gates"):
            self.gates_ax_ = axes[0]
            self._plot_gates(self.gates_ax_, name)
        if kind in ("both", "epochs"):
            self.epochs_ax_ = axes[-1]
            self._plot_epochs(self.epochs_ax_, name)
        self.ax_ = axes if axes.size == 2 else axes[0]
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
