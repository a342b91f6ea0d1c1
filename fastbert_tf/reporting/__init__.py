"""Sweep reports: the paper's results as data, plots, and the sweep job."""
