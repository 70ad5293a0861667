"""ECE and NLL against the temperature (``calibkit sweep-temp --plot``).

The temperature axis is logarithmic (a temperature multiplies the logits' scale, so ``T = 0.5``
is as far from ``T = 1`` as ``T = 2``), with ticks labelled as plain numbers (0.25, 0.5, 1, 2,
4). The legend sits outside the panels, so it never covers a curve or a marked temperature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from calibkit.calibrators.sweep import TemperatureSweep
from calibkit.plotting.style import model_colors

__all__ = ["plot_sweep", "temperature_ticks"]

#: At most this many legend entries side by side under the panels; more go on further rows.
_LEGEND_COLUMNS = 7


def temperature_ticks(t_lo: float, t_hi: float) -> list[float]:
    """Major ticks for a logarithmic temperature axis spanning ``[t_lo, t_hi]``.

    Powers of two for up to about a decade and a half (with 1.5 x 2^k between them when that
    gives fewer than four), 1-2-5 steps up to three decades, powers of ten beyond; linear steps
    for a span too narrow to hold three of those. Always at least two ticks for a real span.

    >>> temperature_ticks(0.25, 4.0)
    [0.25, 0.5, 1.0, 2.0, 4.0]
    >>> temperature_ticks(0.5, 3.0)
    [0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    >>> temperature_ticks(0.1, 10.0)
    [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
    """
    if not (0 < t_lo < t_hi) or not math.isfinite(t_hi):
        return [t_lo] if t_lo > 0 and math.isfinite(t_lo) else []
    ratio = t_hi / t_lo
    eps = 1e-9

    def inside(values: list[float]) -> list[float]:
        return [v for v in values if t_lo * (1 - eps) <= v <= t_hi * (1 + eps)]

    if ratio <= 40:
        k_lo, k_hi = math.floor(math.log2(t_lo)) - 1, math.ceil(math.log2(t_hi)) + 1
        ticks = inside([2.0**k for k in range(k_lo, k_hi + 1)])
        if len(ticks) < 4:
            ticks = inside(sorted(m * 2.0**k for k in range(k_lo, k_hi + 1) for m in (1, 1.5)))
    else:
        e_lo, e_hi = math.floor(math.log10(t_lo)), math.ceil(math.log10(t_hi))
        steps = (1, 2, 5) if ratio <= 1000 else (1,)
        ticks = inside([float(f"{m}e{e}") for e in range(e_lo, e_hi + 1) for m in steps])
        if len(ticks) > 10:  # keep about eight decades labelled
            ticks = ticks[:: math.ceil(len(ticks) / 8)]
    if len(ticks) >= 3:
        return ticks
    from matplotlib.ticker import MaxNLocator

    linear = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(t_lo, t_hi)
    return inside([float(f"{v:.12g}") for v in linear])


def _log_temperature_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter, Locator, NullFormatter

    class TemperatureLocator(Locator):
        """Ticks of :func:`temperature_ticks` for the axis's current view."""

        def __call__(self) -> list[float]:
            if self.axis is None:
                return []
            lo, hi = sorted(self.axis.get_view_interval())
            return temperature_ticks(float(lo), float(hi))

        def tick_values(self, vmin: float, vmax: float) -> list[float]:
            return temperature_ticks(*sorted((float(vmin), float(vmax))))

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(TemperatureLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_sweep(
    sweeps: Sequence[TemperatureSweep],
    *,
    fitted: Mapping[str, float] | None = None,
    axes: Sequence[Any] | None = None,
    title: str | None = None,
    fitted_label: str = "T fitted on validation",
) -> Any:
    """Two panels, ECE vs T and NLL vs T, one line per model, on a logarithmic T axis.

    ``T = 1`` is a dotted vertical line; each model's lowest point on the grid is a filled
    marker; a temperature fitted on validation data (``fitted[name]``) is a dashed vertical line in
    the model's colour. The legend is a figure legend under the two panels. Pass two matplotlib
    axes as ``axes`` to draw into an existing figure (the legend is then placed to the right of
    the second one, outside it); otherwise a new :class:`~matplotlib.figure.Figure` is made.
    Returns the figure.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if axes is None:
        fig = Figure(figsize=(10, 4.6), layout="constrained")
        ax_ece, ax_nll = fig.subplots(1, 2, sharex=True)
    else:
        ax_ece, ax_nll = axes
        fig = ax_ece.figure
    colors = model_colors([s.name for s in sweeps])
    fitted = fitted or {}
    for ax, metric, label in ((ax_ece, "ece", "ECE"), (ax_nll, "nll", "NLL")):
        for sw in sweeps:
            c = colors[sw.name]
            order = np.argsort(sw.temperatures, kind="stable")  # a line through sorted T
            values = getattr(sw, metric)
            ax.plot(sw.temperatures[order], values[order], color=c, lw=1.8, label=sw.name)
            t_best, v_best = sw.best(metric)
            ax.plot([t_best], [v_best], "o", color=c, ms=6.5, mec="white", mew=0.8, zorder=3)
            if sw.name in fitted:
                ax.axvline(fitted[sw.name], color=c, ls="--", lw=1, alpha=0.8)
        ax.axvline(1.0, color="0.4", ls=":", lw=1)
        _log_temperature_axis(ax)
        ax.set_xlabel("temperature T (log scale)")
        unit = f" ({sweeps[0].n_bins} {sweeps[0].binning} bins)" if metric == "ece" else " (nats)"
        ax.set_ylabel(label + unit)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_ece.set_title("calibration error vs temperature")
    ax_nll.set_title("negative log-likelihood vs temperature")
    handles = [Line2D([], [], color=colors[sw.name], lw=1.8, label=sw.name) for sw in sweeps]
    handles += [
        Line2D([], [], color="0.4", ls=":", label="T = 1"),
        Line2D([], [], color="0.3", marker="o", ls="", label="lowest on grid"),
    ]
    if fitted:
        handles.append(Line2D([], [], color="0.3", ls="--", label=fitted_label))
    if axes is None:
        rows = math.ceil(len(handles) / _LEGEND_COLUMNS)
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=math.ceil(len(handles) / rows),
            fontsize=8,
            frameon=False,
        )
    else:
        ax_nll.legend(
            handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
        )  # fmt: skip
    if title:
        fig.suptitle(title)
    return fig
