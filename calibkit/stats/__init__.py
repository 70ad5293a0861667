"""Resampling statistics on per-example numbers: bootstrap intervals and paired tests."""
