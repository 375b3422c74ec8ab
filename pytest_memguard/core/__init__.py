"""The engine: sizes, levels and thresholds, the guard; no pytest import here."""
