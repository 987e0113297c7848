"""Shared fixtures: a tiny model built on the fly, so tests need no network and run on CPU.

The model is saved with ``save_pretrained`` and loaded back through ``from_pretrained(path)``,
the same code path a hub id takes.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

PACKAGE = next(p.name for p in (Path(__file__).parents[1] / "src").iterdir() if p.is_dir()
               and (p / "__init__.py").exists())


@pytest.fixture(scope="session")
def pkg():
    """The generated package (its name differs per generated project)."""
    return importlib.import_module(PACKAGE)


@pytest.fixture(scope="session")
def config(pkg):
    return importlib.import_module(f"{PACKAGE}.config").load_config()


@pytest.fixture(scope="session")
def sample_dir(pkg) -> Path:
    return Path(pkg.__file__).parent / "resources" / "nsmc_sample"


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
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=specials)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=512,
    )
    names = list(label_names or [f"LABEL_{i}" for i in range(num_labels)])
    model_config = ElectraConfig(
        vocab_size=tokenizer.get_vocab_size(), embedding_size=32, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=256, num_labels=num_labels,
        id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
    )
    import torch

    torch.manual_seed(0)
    ElectraForSequenceClassification(model_config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, config, sample_dir) -> Path:
    """A freshly initialised tiny ELECTRA + WordPiece tokenizer for this project's labels."""
    from importlib import import_module

    io = import_module(f"{PACKAGE}.data.io")
    texts = [row.values["document"] for row in io.read_table(sample_dir / "train.tsv").rows]
    names = config.data.label_names
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), texts, len(names), names)
