"""ECE and NLL against the temperature (``calibkit sweep-temp --plot``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from calibkit.calibrators.sweep import TemperatureSweep
from calibkit.plotting.style import model_colors

__all__ = ["plot_sweep"]


def plot_sweep(
    sweeps: Sequence[TemperatureSweep],
    *,
    fitted: Mapping[str, float] | None = None,
    axes: Sequence[Any] | None = None,
    title: str | None = None,
    fitted_label: str = "T fitted on validation",
) -> Any:
    """Two panels, ECE vs T and NLL vs T, one line per model.

    ``T = 1`` is a dotted vertical line; each model's lowest point on the grid is a filled
    marker; a temperature fitted on validation data (``fitted[name]``) is a dashed vertical line in
    the model's colour. Pass two matplotlib axes as ``axes`` to draw into an existing figure;
    otherwise a new :class:`~matplotlib.figure.Figure` is made. Returns the figure.
    """
    from matplotlib.figure import Figure

    if axes is None:
        fig = Figure(figsize=(10, 4.2), layout="constrained")
        ax_ece, ax_nll = fig.subplots(1, 2, sharex=True)
    else:
        ax_ece, ax_nll = axes
        fig = ax_ece.figure
    colors = model_colors([s.name for s in sweeps])
    fitted = fitted or {}
    for ax, metric, label in ((ax_ece, "ece", "ECE"), (ax_nll, "nll", "NLL")):
        for sw in sweeps:
            c = colors[sw.name]
            ax.plot(sw.temperatures, getattr(sw, metric), color=c, lw=1.8, label=sw.name)
            t_best, v_best = sw.best(metric)
            ax.plot([t_best], [v_best], "o", color=c, ms=6, zorder=3)
            if sw.name in fitted:
                ax.axvline(fitted[sw.name], color=c, ls="--", lw=1, alpha=0.8)
        ax.axvline(1.0, color="0.4", ls=":", lw=1)
        ax.set_xlabel("temperature T")
        unit = f" ({sweeps[0].n_bins} {sweeps[0].binning} bins)" if metric == "ece" else " (nats)"
        ax.set_ylabel(label + unit)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_ece.set_title("calibration error vs temperature")
    ax_nll.set_title("negative log-likelihood vs temperature")
    handles, _ = ax_ece.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [
        Line2D([], [], color="0.4", ls=":", label="T = 1"),
        Line2D([], [], color="0.3", marker="o", ls="", label="lowest on grid"),
    ]
    if fitted:
        handles.append(Line2D([], [], color="0.3", ls="--", label=fitted_label))
    ax_nll.legend(handles=handles, fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig
