"""Scoring forecasts: metrics (a registry), the test report and its baselines (report), and intervals: conformal,
MC dropout and their coverage."""
