"""Evaluation: test-set scores with fixed masks, reconstructions, metrics, exports."""
