"""The CI gate: checks of limits and regressions, their configuration, baseline loading."""
