"""bpm.runtime: fitting compiled models to MPRA data."""
