"""Fine-tuning: two entry points (``train_hf``: Hugging Face Trainer, ``train_torch``: plain
PyTorch loop) sharing data, model loading, checkpoints, metrics and artefact code.

Both run as modules (``python -m <package>.training.train_hf``), under ``torchrun`` and inside the
SageMaker training container. Importing this package stays cheap: torch loads on first use.
"""
