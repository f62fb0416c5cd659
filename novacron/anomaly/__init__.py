"""Anomaly detection: streaming detectors scored on the Numenta Anomaly Benchmark."""
