"""bpm.runtime: fit compiled models to sort-seq MPRA data, report, save, predict."""

from .data import Dataset, read_dataset
from .fit import FitResult, fit
from .measurement import OrdinalMeasurement
from .report import load_fit, predict

__all__ = [
    "Dataset",
    "FitResult",
    "OrdinalMeasurement",
    "fit",
    "load_fit",
    "predict",
    "read_dataset",
]
