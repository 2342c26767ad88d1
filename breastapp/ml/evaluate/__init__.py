"""Evaluation: pixel Dice/IoU (seed 003's equation 4, both lines of its Table I), lesion FROC,
ROC/AUC with a patient bootstrap interval, confusion matrices, and the report writer."""
