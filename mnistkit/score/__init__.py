"""Scoring: models on the test set and on pictures, in worker processes."""
