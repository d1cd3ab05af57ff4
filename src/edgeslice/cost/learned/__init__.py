"""Learned cost models: FCPM, OfpCNN's FLOPs + CPU-load latency predictor (see :mod:`.fcpm`)."""
