"""Inference: container handlers (``inference.py``), model packaging, local server, batch runs."""
