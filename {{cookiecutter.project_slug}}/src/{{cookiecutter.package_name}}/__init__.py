"""Text classifier project generated from the text-classifier cookiecutter template."""

__version__ = "0.1.0"
