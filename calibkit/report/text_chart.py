"""A compact reliability chart in text, for CI logs and ssh sessions (``calibkit ece --plot``).

One line per bin: its range and count, then a bar as long as the bin's accuracy, with ``|`` at
the bin's mean confidence. A bar that stops short of the ``|`` is over-confidence; one that runs
past it is under-confidence.
"""

from __future__ import annotations

import math

from rich.text import Text

from calibkit.metrics.calibration import BinTable

__all__ = ["reliability_text"]


def reliability_text(table: BinTable, *, width: int = 30, title: str | None = None) -> Text:
    """Render ``table`` as styled text (plain when printed to a non-terminal); 75 columns wide.

    >>> from calibkit.metrics import bin_table
    >>> print(reliability_text(bin_table([0.9, 0.9, 0.3], [1, 0, 0], n_bins=2), width=10).plain)
    reliability: bar = accuracy, | = mean confidence
    bin range         count  0 ........ 1
      1 [0.00,0.50]       1  |           acc 0.000 conf 0.300
      2 (0.50,1.00]       2  █████    |  acc 0.500 conf 0.900
    """
    out = Text()
    if title:
        out.append(title + "\n", style="bold")
    out.append("reliability: bar = accuracy, | = mean confidence\n", style="dim")
    out.append(f"bin range         count  0 {'.' * (width - 2)} 1\n", style="dim")
    conf, acc = table.confidence, table.accuracy
    for i in range(table.n_bins):
        lo = "[" if i == 0 and table.binning == "width" else "("
        out.append(f"{i + 1:3d} {lo}{table.lower[i]:.2f},{table.upper[i]:.2f}] ")
        out.append(f"{int(table.count[i]):7d}  ")
        if table.count[i] == 0:
            out.append("empty\n", style="dim")
            continue
        filled = round(float(acc[i]) * width)
        mark = min(width - 1, math.floor(float(conf[i]) * width))
        style = "cyan" if acc[i] >= conf[i] else "yellow"
        for j in range(width):
            if j == mark:
                out.append("|", style="bold red")
            else:
                out.append("█" if j < filled else " ", style=style)
        out.append(f"  acc {acc[i]:.3f} conf {conf[i]:.3f}\n", style="dim")
    out.rstrip()
    return out
