"""Scoring forecasts: metrics (a registry), the test report and its baselines (report), comparisons of many fits
(comparison), and intervals: conformal, MC dropout and their coverage."""
