"""Dialogs: job progress, import report, training, model versions, evaluation, about."""
