"""Prediction sources: the Predictions type, its validation, views over a source, label digests."""
