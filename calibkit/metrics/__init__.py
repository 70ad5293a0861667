"""Pure metric computations: numpy in, numbers out; no files, no printing."""

from calibkit.metrics.binning import assign_bins, mass_bin_edges, width_bin_edges
from calibkit.metrics.calibration import (
    BinTable,
    bin_table,
    expected_calibration_error,
    maximum_calibration_error,
    rms_calibration_error,
)
from calibkit.metrics.examples import ExampleStats, example_stats
from calibkit.metrics.summary import CalibrationSummary, MetricAccumulator, summarize

__all__ = [
    "BinTable",
    "CalibrationSummary",
    "ExampleStats",
    "MetricAccumulator",
    "assign_bins",
    "bin_table",
    "example_stats",
    "expected_calibration_error",
    "mass_bin_edges",
    "maximum_calibration_error",
    "rms_calibration_error",
    "summarize",
    "width_bin_edges",
]
