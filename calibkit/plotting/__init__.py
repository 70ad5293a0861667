"""Figures: ``prepare_*`` functions compute the data, ``plot_*`` functions draw it.

matplotlib is imported inside the drawing functions, never at module level. Figures are built
with :class:`matplotlib.figure.Figure` (no pyplot), so they render headless and never touch the
global pyplot state of a notebook.
"""
