"""Layer 4, evaluate: numbers to compare and pictures to look at.

metrics.py (top-1, top-5, macro-F1, which signers a model has seen), plots.py (confusion matrix, learning
curves) and report.py (a model scored on a dataset: report.json, misclassified.csv, plots).
"""

from signrec._moved import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "evaluate": "signrec.evaluate.report", "score": "signrec.evaluate.metrics",
    "trained_signers": "signrec.evaluate.metrics", "seen_signers": "signrec.evaluate.metrics",
    "plot_confusion": "signrec.evaluate.plots", "plot_learning_curves": "signrec.evaluate.plots",
    "read_log": "signrec.evaluate.plots", "display_label": "signrec.evaluate.plots"})
