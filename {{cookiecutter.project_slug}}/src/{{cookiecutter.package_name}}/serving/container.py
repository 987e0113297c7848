"""The Hugging Face inference container the handlers are tested in (no imports: read cheaply)."""

# The Hugging Face inference image the container-parity test (tests/test_serving_parity.py)
# runs, and so the one `sagemaker deploy` and `batch-transform` use unless told otherwise: its
# transformers / PyTorch / Python versions and its inference toolkit. The test fails when its
# environment drifts from these. The 5.x images carry a newer toolkit that is not on PyPI
# (toolkit 2.6.0 does not import under transformers 5), so none of them can be tested here.
CONTAINER_TRANSFORMERS, CONTAINER_PYTORCH, CONTAINER_PYTHON = "4.51.3", "2.6.0", "py312"
CONTAINER_TOOLKIT = "2.6.0"
# ONNX Runtime for the onnx engines: model.tar.gz's code/requirements.txt names this version when
# the model was exported (the container pip-installs it at start-up), and the parity test runs it.
CONTAINER_ONNXRUNTIME = "1.32.0"
