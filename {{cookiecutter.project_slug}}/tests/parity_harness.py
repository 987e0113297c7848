"""Run requests through the Hugging Face inference toolkit's own handler service, in-process.

Runs under the parity virtualenv's Python (transformers 4.51.3,
sagemaker-huggingface-inference-toolkit 2.6.0, multi-model-server), never under the project's:
    python parity_harness.py MODEL_DIR REQUESTS_JSON RESULTS_JSON [TEXTS_JSON SCORES_JSON]
MODEL_DIR is an extracted model.tar.gz. REQUESTS_JSON is a list of
{"content_type", "accept", "body"} (body as text); RESULTS_JSON receives, per request,
{"status", "content_type", "body"} the way multi-model-server would answer: the handler's
response with 200, or the PredictionException's code and message.
With TEXTS_JSON (a list of texts), SCORES_JSON receives what the toolkit's own pipeline answers
them with ``top_k=None`` (every label's score, best first): the pipeline its default handler
builds when a model ships no code/inference.py, the reference for the handler's scores.
"""

from __future__ import annotations

import json
import sys


def main(model_dir: str, requests_path: str, results_path: str) -> None:
    from mms.context import Context, RequestProcessor
    from mms.metrics.metrics_store import MetricsStore
    from mms.service import PredictionException
    from sagemaker_huggingface_inference_toolkit.handler_service import HuggingFaceHandlerService

    context = Context(
        model_name="model",
        model_dir=model_dir,
        manifest={},
        batch_size=1,
        gpu=None,
        mms_version="1.1.11",
    )
    context.metrics = MetricsStore({0: "req-0"}, "model")
    service = HuggingFaceHandlerService()
    service.initialize(context)
    with open(requests_path, encoding="utf-8") as handle:
        requests = json.load(handle)
    results = []
    for request in requests:
        headers = {"Content-Type": request["content_type"]}
        if request.get("accept") is not None:
            headers["Accept"] = request["accept"]
        context.request_processor = [RequestProcessor(headers)]
        try:
            (response,) = service.handle([{"body": request["body"].encode("utf-8")}], context)
        except PredictionException as error:
            results.append({"status": error.error_code, "content_type": None, "body": error.message})
            continue
        if isinstance(response, bytes):
            response = response.decode("utf-8")
        results.append(
            {
                "status": 200,
                "content_type": context.get_response_content_type(0),
                "body": response,
            }
        )
    with open(results_path, "w", encoding="utf-8") as handle:
        json.dump(results, handle, ensure_ascii=False)


def pipeline_scores(model_dir: str, texts_path: str, scores_path: str) -> None:
    """The toolkit's pipeline (transformers_utils.get_pipeline's call) on the texts."""
    from transformers import PreTrainedTokenizerFast, pipeline

    # get_pipeline passes the folder as the tokenizer; a tokenizer saved by transformers 5
    # names a class 4.51 lacks, so the generic fast class reads its tokenizer.json instead.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(model_dir)
    classify = pipeline(task="text-classification", model=model_dir, tokenizer=tokenizer, device=-1)
    with open(texts_path, encoding="utf-8") as handle:
        texts = json.load(handle)
    with open(scores_path, "w", encoding="utf-8") as handle:
        json.dump(classify(texts, top_k=None), handle, ensure_ascii=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
    if len(sys.argv) > 4:
        pipeline_scores(sys.argv[1], *sys.argv[4:6])
