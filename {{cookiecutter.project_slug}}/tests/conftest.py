"""Shared fixtures: a tiny model built on the fly, so tests need no network and run on CPU, and
data written in THIS project's columns and label names (whatever it was generated with).

The model is saved with ``save_pretrained`` and loaded back through ``from_pretrained(path)``,
the same code path a hub id takes.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

import nsmc_sentiment_classifier as package
from nsmc_sentiment_classifier.config import (
    CONFIG_ENV_VAR,
    ProjectConfig,
    load_config,
)
from nsmc_sentiment_classifier.data import download, io, sources

PACKAGE = package.__name__


@pytest.fixture(scope="session")
def pkg():
    return package


@pytest.fixture(scope="session")
def config() -> ProjectConfig:
    return load_config()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return sources.bundled_sample_dir()


@pytest.fixture
def configured_dataset(config: ProjectConfig) -> str:
    """config.toml's [data].source, for the tests about that dataset itself; skipped, naming the
    missing file, where this machine lacks it: data is git-ignored, so a CI runner or a fresh
    clone has none (every other test writes data in this project's columns and label names)."""
    source = config.data.source
    if source.startswith("s3://"):
        pytest.skip(f"the configured dataset {source} is on S3; these tests read local data only")
    if source == "nsmc-sample":
        needed = []
    elif source == "nsmc":
        needed = [download.nsmc_dir() / name for name in download.NSMC_FILES]
    else:
        needed = [Path(source).expanduser()]
    missing = [path for path in needed if not path.exists()]
    if missing:
        pytest.skip(
            f"the configured dataset is not on this machine: no {', '.join(map(str, missing))} "
            "(data is git-ignored; a CI runner or a fresh clone has none)"
        )
    return source


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: ProjectConfig) -> Path:
    """A scratch project root: a copy of config.toml in ``tmp_path``, selected and entered, so
    prepared data, checkpoints and outputs land there and not in the real project."""
    shutil.copyfile(config.path, tmp_path / "config.toml")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tmp_path / "config.toml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sample_rows() -> list[tuple[str, int]]:
    folder = sources.bundled_sample_dir()
    rows = []
    for name in ("train.tsv", "test.tsv"):
        for row in io.read_table(folder / name).rows:
            text = row.values["document"].strip()
            if text:
                rows.append((text, int(row.values["label"])))
    return rows


def class_marker(label_id: int) -> str:
    """A distinct Hangul syllable per class: with more than two labels, texts carry their class's
    syllable, so the tiny model has something to learn for any label count."""
    return chr(0xAC00 + 37 * label_id)


def labelled_records(config: ProjectConfig, count: int, offset: int = 0) -> list[tuple[str, int]]:
    """``count`` (text, label id) pairs for this project's labels, from the bundled NSMC texts.

    Two labels keep NSMC's real sentiment labels; more labels get a class per row, in turn, and
    that class's marker in the text.
    """
    rows = _sample_rows()[offset : offset + count]
    assert len(rows) == count, f"the bundled sample has fewer than {offset + count} usable rows"
    num_labels = len(config.data.label_names)
    if num_labels == 2:
        return rows
    records = []
    for index, (text, _) in enumerate(rows):
        label = index % num_labels
        marker = class_marker(label)
        records.append((f"{marker} {marker} {text}", label))
    return records


def label_value(config: ProjectConfig, label_id: int) -> str | int:
    """A label as this project's data files hold it (ids or names, see [data].label_format)."""
    if config.data.label_format == "ids":
        return label_id
    return config.data.label_names[label_id]


def label_cells(config: ProjectConfig, label_id: int, *, ids: bool = False) -> dict[str, object]:
    """A row's label cells in this project's layout: its label column, or (label_layout
    "columns") one 0/1 column per label name."""
    if config.data.label_layout == "columns":
        return {name: int(index == label_id) for index, name in enumerate(config.data.label_names)}
    return {config.data.label_column: label_id if ids else label_value(config, label_id)}


def targets_of(config: ProjectConfig, label_ids: Sequence[int]) -> list:
    """Label ids (of :func:`labelled_records`) as the project's label scheme's targets (for
    multi-label, a set of one label each), read as the scheme reads a prepared file's ids."""
    read = config.data.label_scheme.label_reader(set(label_ids), config.data.label_names, "ids")
    return [read(label) for label in label_ids]


def pair_text(text: str) -> str:
    """The second text of a pair, for a text-pair project, where a test's records hold one text:
    the text's words in reverse order (the tiny model's tokenizer knows them; never empty)."""
    return " ".join(reversed(text.split())) or text


def text_cells(config: ProjectConfig, text: str, pair: str | None = None) -> dict[str, str]:
    """A row's text cells in this project's columns: the text, and for a text-pair project the
    second text too (``pair``, else :func:`pair_text` of the text)."""
    cells = {config.data.text_column: text}
    if config.data.pair_column:
        cells[config.data.pair_column] = pair_text(text) if pair is None else pair
    return cells


def write_labelled(
    path: Path,
    config: ProjectConfig,
    records: Sequence[tuple[str, int]],
    *,
    ids: bool = False,
    with_id_column: bool = True,
    pairs: Sequence[str] | None = None,
) -> Path:
    """Write records in the project's columns as CSV, TSV or JSON Lines (by suffix); ``ids``
    writes label ids (as `data prepare` does), otherwise values as the project's files hold them.
    A text-pair project's rows get both texts: ``pairs`` (one per record) or :func:`pair_text`."""
    rows = []
    for number, (text, label) in enumerate(records, start=1):
        row: dict[str, object] = {"id": number} if with_id_column else {}
        row.update(text_cells(config, text, None if pairs is None else pairs[number - 1]))
        row.update(label_cells(config, label, ids=ids))
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        io.write_jsonl(path, rows)
        return path
    delimiter = "," if path.suffix == ".csv" else "\t"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def train_briefly(project_dir: Path, config: ProjectConfig, model_dir: Path, *flags: str) -> Path:
    """A few steps of training in this process, through the command line, on 32 training and 16
    validation rows in this project's labels; returns the run's folder."""
    from nsmc_sentiment_classifier import cli

    records = labelled_records(config, 48)
    channels = project_dir / "channels"
    write_labelled(channels / "train" / "train.jsonl", config, records[:32], ids=True, with_id_column=False)
    write_labelled(channels / "validation" / "validation.jsonl", config, records[32:], ids=True)
    code = cli.main(
        [
            "train",
            "--model_name_or_path", str(model_dir),
            "--train_dir", str(channels / "train"),
            "--validation_dir", str(channels / "validation"),
            "--batch_size", "16", "--max_seq_length", "32",
            *flags,
        ]
    )  # fmt: skip
    assert code == 0, "the training run failed (its log is in the captured output)"
    latest = json.loads((project_dir / "outputs" / "latest.json").read_text("utf-8"))
    return project_dir / latest["run_dir"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def build_tiny_model(folder: Path, texts: list[str], num_labels: int, label_names=None) -> Path:
    """Train a WordPiece tokenizer on ``texts`` and save it with a small random ELECTRA."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import (
        ElectraConfig,
        ElectraForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=specials))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        # As BERT's tokenizers: the second text of a pair (and its [SEP]) has token type 1.
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    names = list(label_names or [f"LABEL_{i}" for i in range(num_labels)])
    # transformers' typing lacks the PretrainedConfig keywords (num_labels, id2label, ...).
    model_config = ElectraConfig(  # type: ignore[call-arg]
        vocab_size=tokenizer.get_vocab_size(),
        embedding_size=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=num_labels,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    import torch

    torch.manual_seed(0)
    ElectraForSequenceClassification(model_config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, config) -> Path:
    """A freshly initialised tiny ELECTRA + WordPiece tokenizer for this project's labels."""
    texts = [text for text, _ in labelled_records(config, len(_sample_rows()))]
    names = config.data.label_names
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), texts, len(names), names)


@pytest.fixture(scope="session")
def project_model_dir(tmp_path_factory, config) -> Path:
    """A tiny model recorded with this project's label scheme and text columns, as its training
    records them (default thresholds for a multi-label project, both text columns for a text-pair
    project): what the project's evaluate and predict accept."""
    from transformers import AutoConfig

    texts = [text for text, _ in labelled_records(config, len(_sample_rows()))]
    names = config.data.label_names
    folder = build_tiny_model(tmp_path_factory.mktemp("project-model"), texts, len(names), names)
    scheme = config.data.label_scheme
    model_config = AutoConfig.from_pretrained(folder)
    model_config.problem_type = scheme.problem_type
    for key, value in scheme.model_config().items():
        setattr(model_config, key, value)
    if config.data.pair_column:
        model_config.text_pair_columns = list(config.data.text_columns)
    model_config.save_pretrained(folder)
    return folder


def labelled_examples(config: ProjectConfig, count: int, offset: int = 0) -> list:
    """:func:`labelled_records` as the project reads labelled rows (``Example``: its scheme's
    targets, and a text-pair project's second texts)."""
    from nsmc_sentiment_classifier.data.examples import Example

    records = labelled_records(config, count, offset)
    targets = targets_of(config, [label for _, label in records])
    return [
        Example(text, target, line, pair_text(text) if config.data.pair_column else None)
        for line, ((text, _), target) in enumerate(zip(records, targets, strict=True), start=2)
    ]


@pytest.fixture(scope="session")
def exported_model_dir(tmp_path_factory, project_model_dir, config) -> Path:
    """:func:`project_model_dir` after ``export``: model.onnx, model.int8.onnx, engines.json."""
    from nsmc_sentiment_classifier.serving.export import export_model

    folder = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(project_model_dir, folder)
    export_model(folder, labelled_examples(config, 40), config.data.label_names, progress=False)
    return folder


@pytest.fixture
def live_server():
    """Start ``serve``'s server in this process (its scheduler can be inspected) on a free
    port: ``server, port = live_server(model_dir, batch_size=8)``; stopped after the test."""
    import http.client
    import threading
    import time

    from nsmc_sentiment_classifier.serving.server import (
        ServerOptions,
        make_server,
    )

    running = []

    def start(model_dir: Path, **options):
        server = make_server(model_dir, ServerOptions(port=0, **options))
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        running.append((server, thread))
        port = server.server_address[1]
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    connection.close()
                    return server, port
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    yield start
    for server, thread in running:
        server.stop()
        thread.join(timeout=60)


MULTI_LABEL_NAMES = ("hate", "gender", "age", "clean")
# Per label of MULTI_LABEL_NAMES: a random tiny model scores every label near 0.5, so "hate" and
# "gender" are decided for every text, "age" for none, and "clean" where its score says so.
MULTI_LABEL_THRESHOLDS = (0.01, 0.02, 0.99, 0.5)


def build_multi_label_model(
    folder: Path, texts: list[str], names: Sequence[str], thresholds: Sequence[float], delimiter: str = "|"
) -> Path:
    """A tiny model recorded as training records a multi-label one (label scheme, thresholds,
    delimiter and problem type in config.json)."""
    from transformers import AutoConfig

    build_tiny_model(folder, texts, len(names), names)
    model_config = AutoConfig.from_pretrained(folder)
    model_config.problem_type = "multi_label_classification"
    model_config.label_scheme = "multi_label"
    model_config.label_thresholds = list(thresholds)
    model_config.label_delimiter = delimiter
    model_config.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def multi_label_model_dir(tmp_path_factory, config) -> Path:
    """A tiny multi-label model with MULTI_LABEL_NAMES and MULTI_LABEL_THRESHOLDS."""
    texts = [text for text, _ in labelled_records(config, len(_sample_rows()))]
    folder = tmp_path_factory.mktemp("tiny-multi-label-model")
    return build_multi_label_model(folder, texts, MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS)
