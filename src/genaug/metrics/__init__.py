"""Evaluation: classification metrics (classification.py) and pictures (plots.py)."""
