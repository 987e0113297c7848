"""Engines: the ONNX export, ONNX Runtime fp32/int8 against PyTorch, and how each is chosen."""

from __future__ import annotations

import json
import random
import shutil
import sys

import pytest
from conftest import labelled_records, pair_text, write_labelled

from nsmc_sentiment_classifier import cli
from nsmc_sentiment_classifier.serving import (
    batch,
    export,
    inference,
    package,
)

LONG = "끝까지 본 내 자신이 대견하다 " * 60


def request(config, texts):
    """An inference request in this project's shape (text pairs for a text-pair project)."""
    pairs = [pair_text(text) for text in texts] if config.data.pair_column else None
    return inference.Request(list(texts), pairs, top_k=None, legacy=False)


@pytest.fixture(scope="module")
def texts(config):
    return [text for text, _ in labelled_records(config, 60, offset=200)] + ["", LONG]


@pytest.fixture(scope="module")
def engines(exported_model_dir):
    return {
        name: inference.load_model(str(exported_model_dir), engine=name) for name in inference.ENGINES[1:]
    }


def test_onnx_scores_as_torch_within_1e_4(engines, config, texts):
    torch_scores = inference.predict_fn(request(config, texts), engines["torch"]).scores
    onnx = inference.predict_fn(request(config, texts), engines["onnx"])
    assert onnx.truncated == 1, "the long text is cut to the token limit, as with torch"
    for theirs, ours in zip(torch_scores, onnx.scores, strict=True):
        assert ours == pytest.approx(theirs, abs=export.PARITY)


def test_engines_json_records_the_figures_and_the_fastest_default_within_the_bound(exported_model_dir):
    record = json.loads((exported_model_dir / inference.ENGINES_FILE).read_text("utf-8"))
    rows = {row["engine"]: row for row in record["engines"]}
    assert list(rows) == ["torch", "onnx", "onnx-int8"]
    assert record["check_texts"] == 40 and record["accuracy_bound"] == export.ACCURACY_BOUND
    assert rows["onnx"]["max_score_difference"] <= export.PARITY and rows["onnx"]["file"] == "model.onnx"
    assert rows["onnx-int8"]["variant"] in [name for name, _ in export.INT8_VARIANTS]
    allowed = [
        row for row in rows.values() if rows["torch"]["metric"] - row["metric"] <= export.ACCURACY_BOUND
    ]
    assert record["default"] == max(allowed, key=lambda row: row["texts_per_second"])["engine"]
    assert record["machine"]["onnxruntime"] and "threads" in record["machine"]
    assert inference.load_model(str(exported_model_dir)).engine == record["default"], "auto serves it"


@pytest.mark.engine
@pytest.mark.parametrize("engine", ["onnx-int8", "onnx"])
def test_onnx_answers_do_not_depend_on_the_other_texts_in_the_batch(engines, config, texts, engine):
    """The server merges requests into sub-batches: a text's scores must be exactly the same
    alone and beside any other texts, in a sub-batch of any size (int8 quantizes activations with
    one scale per forward pass, and each text has its own)."""
    classifier = engines[engine]
    alone = {text: inference.predict_fn(request(config, [text]), classifier).scores[0] for text in texts}
    rng = random.Random(7)
    for _ in range(300):
        chosen = rng.sample(texts, rng.randint(2, len(texts)))
        classifier.batch_size = rng.choice([2, 3, 8, 32, 64])
        scores = inference.predict_fn(request(config, chosen), classifier).scores
        assert scores == [alone[text] for text in chosen]


@pytest.mark.engine
def test_a_missing_runtime_is_one_clear_line(exported_model_dir, tmp_path, config, monkeypatch, capsys):
    data = write_labelled(tmp_path / "texts.csv", config, labelled_records(config, 3))
    # None in sys.modules makes `import onnxruntime` raise ImportError, as when not installed.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code = cli.main(["predict", str(data), "--model", str(exported_model_dir), "--engine", "onnx"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "engine onnx needs ONNX Runtime, which is not installed: pip install onnxruntime" in err
    code = cli.main(["export", "--model", str(exported_model_dir), "--check", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not installed: onnxruntime" in err, err


@pytest.mark.engine
def test_an_engine_without_its_file_names_the_export_command(project_model_dir, tmp_path, config, capsys):
    data = write_labelled(tmp_path / "texts.csv", config, labelled_records(config, 3))
    code = cli.main(["predict", str(data), "--model", str(project_model_dir), "--engine", "onnx-int8"])
    err = capsys.readouterr().err
    assert code == 2 and "model.int8.onnx not found" in err and "export command" in err


def test_export_predict_evaluate_and_package_through_the_command_line(
    project_dir, project_model_dir, config, capsys
):
    model = project_dir / "model"
    shutil.copytree(project_model_dir, model)
    check = write_labelled(project_dir / "check.csv", config, labelled_records(config, 40))
    code = cli.main(
        ["export", "--model", str(model), "--check", str(check), "--check-rows", "30", "--no-progress"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    record = json.loads((model / "engines.json").read_text("utf-8"))
    assert record["check_texts"] == 30 and f"default engine on CPU: {record['default']}" in out
    assert all(engine in out for engine in ("torch", "onnx", "onnx-int8"))
    predicted = {}
    for engine in ("torch", "onnx", "auto"):
        out_file = project_dir / f"{engine}.jsonl"
        code = cli.main(
            ["predict", str(check), "--model", str(model), "--engine", engine, "--out", str(out_file)]
        )
        assert code == 0, capsys.readouterr().err
        predicted[engine] = [json.loads(line) for line in out_file.read_text("utf-8").splitlines()]
    labels = [key for key in predicted["torch"][0] if key.startswith("predicted_")]
    assert [[r[k] for k in labels] for r in predicted["onnx"]] == [
        [r[k] for k in labels] for r in predicted["torch"]
    ]
    code = cli.main(["evaluate", str(check), "--model", str(model), "--engine", "onnx", "--no-baseline"])
    assert code == 0, capsys.readouterr().err
    archive = project_dir / "model.tar.gz"
    assert cli.main(["package", "--model", str(model), "--out", str(archive)]) == 0
    members = package.check_model_archive(archive)
    assert {"model.onnx", "model.int8.onnx", "engines.json"} <= set(members)


@pytest.mark.engine
def test_the_archive_installs_onnxruntime_and_refuses_a_missing_default(exported_model_dir, tmp_path):
    import tarfile

    from nsmc_sentiment_classifier.serving import container

    archive = tmp_path / "model.tar.gz"
    package.build_model_archive(exported_model_dir, archive)
    with tarfile.open(archive) as tar:
        requirements = tar.extractfile("code/requirements.txt").read().decode()  # type: ignore[union-attr]
    assert f"onnxruntime=={container.CONTAINER_ONNXRUNTIME}\n" in requirements
    broken = tmp_path / "broken"
    shutil.copytree(exported_model_dir, broken)
    record = json.loads((broken / "engines.json").read_text("utf-8"))
    (broken / "engines.json").write_text(json.dumps({**record, "default": "onnx-int8"}), "utf-8")
    (broken / "model.int8.onnx").unlink()
    with pytest.raises(package.PackageError, match="default engine onnx-int8 needs model.int8.onnx"):
        package.build_model_archive(broken, tmp_path / "broken.tar.gz")


def test_batch_prediction_uses_the_chosen_engine(exported_model_dir):
    for engine in ("torch", "onnx", "onnx-int8"):
        assert batch.load_classifier(exported_model_dir, 4, engine=engine).engine == engine


def test_no_deprecated_quantization_api():
    """torch.ao.quantization (torch's eager dynamic quantization) is deprecated in torch 2.13."""
    from pathlib import Path

    sources = Path(inference.__file__).parents[1].rglob("*.py")
    assert not [path.name for path in sources if "torch.ao" in path.read_text("utf-8")]


@pytest.mark.engine
def test_the_server_merges_concurrent_requests_without_changing_int8_answers(
    live_server, exported_model_dir, engines, config, texts
):
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    _, port = live_server(exported_model_dir, engine="onnx-int8", batch_size=8)
    int8 = engines["onnx-int8"]
    expected = {text: inference.predict_fn(request(config, [text]), int8).scores[0] for text in texts}

    def ask(chunk):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        items = [{"text": t, "text_pair": pair_text(t)} for t in chunk] if config.data.pair_column else chunk
        body = json.dumps({"inputs": items, "parameters": {"top_k": None}})
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        assert answer.status == 200
        rows = json.loads(answer.read())
        connection.close()
        return [sorted(row, key=lambda item: int8.labels.index(item["label"])) for row in rows]

    chunks = [texts[i : i + 5] for i in range(0, len(texts), 5)] * 2
    with ThreadPoolExecutor(8) as pool:
        for chunk, rows in zip(chunks, pool.map(ask, chunks), strict=True):
            for text, row in zip(chunk, rows, strict=True):
                assert [item["score"] for item in row] == pytest.approx(expected[text], abs=1e-6)
