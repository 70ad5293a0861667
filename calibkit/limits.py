"""The upper bounds on every count and input size calibkit accepts, in one place.

Each bound is far above what a calibration measurement needs and far below what would run for
hours or exhaust memory; a value outside it is refused with one line naming the bound, never
attempted. This module imports nothing, so the command line can use the bounds in its option
declarations without loading numpy.

========================  ============  ========================================================
bound                     value         why
========================  ============  ========================================================
``MAX_BINS``              10 000        more bins leave a handful of examples in each for any
                                        realistic ``N``; per-bin outputs grow with ``M``
``MAX_REPLICATES``        1 000 000     bootstrap replicates: intervals stop changing long before
``MAX_RESAMPLED_ROWS``    5 x 10^10     replicates x rows of one bootstrap (20-50 ns per
                                        resampled row on two cores: at most about 20 minutes;
                                        ``check``'s default 2000 replicates fit 12.5 M rows)
``MAX_SEED``              2^63 - 1      the largest integer every JSON and TOML reader keeps
``MAX_CHUNK_ROWS``        10^8          rows per streamed chunk (``--chunk-rows``)
``MAX_TEMPERATURES``      10 000        temperatures of one sweep (``--steps``, ``--temps``)
``MAX_SWEEP_CELLS``       10^7          temperatures x bins of one sweep (its per-bin sums)
``MAX_TEXT_BYTES``        16 MiB        a JSON baseline, calibrator JSON or TOML configuration
========================  ============  ========================================================
"""

from __future__ import annotations

__all__ = [
    "MAX_BINS",
    "MAX_CHUNK_ROWS",
    "MAX_REPLICATES",
    "MAX_RESAMPLED_ROWS",
    "MAX_SEED",
    "MAX_SWEEP_CELLS",
    "MAX_TEMPERATURES",
    "MAX_TEXT_BYTES",
]

MAX_BINS = 10_000
MAX_REPLICATES = 1_000_000
MAX_RESAMPLED_ROWS = 5 * 10**10
MAX_SEED = 2**63 - 1
MAX_CHUNK_ROWS = 10**8
MAX_TEMPERATURES = 10_000
MAX_SWEEP_CELLS = 10**7
MAX_TEXT_BYTES = 16 * 1024 * 1024
