"""Layer 5, train: a model from a landmark store.

config.py (the frozen, validated TrainConfig), data.py (splits and features for training), augment.py,
lightning.py (the LightningModule and DataModule; imported only when a fit starts), fit.py (one Lightning fit),
run_folder.py (where a run keeps its files), run.py (one run: split, fit, score, save) and loso.py
(leave one signer out).
"""

from signrec._moved import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "TrainConfig": "signrec.train.config", "train": "signrec.train.run", "train_split": "signrec.train.run",
    "duration": "signrec.train.run", "train_loso": "signrec.train.loso", "loso_table": "signrec.train.loso",
    "fit": "signrec.train.fit", "make_split": "signrec.train.data", "RunFolder": "signrec.train.run_folder"})
