"""Plots for reports and notebooks (matplotlib), one module per area."""
