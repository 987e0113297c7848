"""What a training run shows its user: progress from the first steps, one plain line for the
base model's new head (no transformers load-report table, no terminal escapes), no MLflow table
set-up lines; and the Trainer entry point's evaluation batches, longest first."""

from __future__ import annotations

import logging
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import PACKAGE, labelled_records, write_labelled

from nsmc_sentiment_classifier import label_schemes
from nsmc_sentiment_classifier.config import CONFIG_ENV_VAR
from nsmc_sentiment_classifier.data.examples import Example
from nsmc_sentiment_classifier.training import (
    modeling,
    options,
    pipeline,
)
from nsmc_sentiment_classifier.training.data import (
    RunData,
    make_collator,
    tokenize,
)
from nsmc_sentiment_classifier.training.runtime import Runtime

pytestmark = pytest.mark.engine

ESCAPE = "\x1b["


@pytest.fixture(scope="module")
def base_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model without its classification head, like a hub base model."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("base-model")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    model.electra.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return folder


def test_a_new_head_is_one_plain_line(base_model_dir, config, capfd, caplog):
    caplog.set_level(logging.INFO)
    model = modeling.load_model(str(base_model_dir), config.data.label_names)
    assert model.config.num_labels == len(config.data.label_names)
    shown = capfd.readouterr()
    printed = shown.out + shown.err + caplog.text
    assert "LOAD REPORT" not in printed and ESCAPE not in printed
    lines = [record.getMessage() for record in caplog.records if record.name == modeling.log.name]
    assert len(lines) == 1 and "initialised anew (classifier." in lines[0], lines
    assert "as usual for a new classification head" in lines[0]


def _runtime() -> Runtime:
    return Runtime(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"), precision="no")


def _progress_steps(caplog) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"step (\d+)/\d+ \(", caplog.text)]


@pytest.mark.parametrize("resumed_at", [0, 100])
def test_progress_shows_from_the_first_steps(resumed_at, caplog):
    """The first progress line used to wait for the first logging step (50 steps: minutes)."""
    caplog.set_level(logging.INFO)
    schedule = pipeline.Schedule(
        batches_per_epoch=500, steps_per_epoch=500, total_steps=500, warmup_steps=0, examples_per_step=16
    )
    recorder = pipeline.Recorder(_runtime(), schedule, logging_steps=50)
    recorder.start(resumed_at, 500, [])
    for step in range(resumed_at + 1, resumed_at + 121):
        recorder.step_done(step)
        if step % 50 == 0:
            recorder.record({"step": step, "epoch": 0.1, "train_loss": 0.5})
    early = [resumed_at + done for done in (1, 2, 4, 8, 16, 32)]
    loss_lines = [step for step in range(resumed_at + 1, resumed_at + 121) if step % 50 == 0]
    assert _progress_steps(caplog) == sorted([*early, *loss_lines])
    assert "samples/s" in caplog.text and "ETA" in caplog.text


def test_trainer_evaluates_longest_first_and_keeps_the_order(tiny_model_dir, config, tmp_path):
    """The Trainer evaluated in input order: 27% real tokens against the plain loop's 93%."""
    from transformers import AutoTokenizer

    from nsmc_sentiment_classifier.training import train_hf

    rng = random.Random(3)
    words = [text for text, _ in labelled_records(config, 50)]
    examples = []
    for index in range(200):
        text = " ".join(rng.choice(words) for _ in range(rng.choice([1, 1, 1, 2, 12])))
        examples.append(Example(text, index % len(config.data.label_names), index + 2))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    # The order, not the labels, is under test: one label per text.
    single = label_schemes.get("single_label")
    split = tokenize("validation", examples, tokenizer, 128, single, len(config.data.label_names))
    data = RunData(split, split, split, tuple(config.data.label_names), 128)
    parsed = options.parse_options(
        [
            "--model_name_or_path", str(tiny_model_dir), "--eval_batch_size", "16",
            "--checkpoint_dir", str(tmp_path / "checkpoints"), "--report_to", "none",
        ],
        {},
    )  # fmt: skip
    schedule = pipeline.make_schedule(parsed, len(split), 1)
    context = pipeline.RunContext(
        parsed,
        _runtime(),
        tokenizer,
        modeling.load_model(
            str(tiny_model_dir), config.data.label_names, pad_token_id=tokenizer.pad_token_id
        ),
        data,
        make_collator(tokenizer, parsed.padding, data),
        schedule,
        pipeline.Recorder(_runtime(), schedule),
    )
    backend = train_hf.HFTrainer(context)
    real = padded = 0
    for batch in backend.trainer.get_eval_dataloader():
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
    assert real / padded > 0.85
    y_true, rows, _ = backend.predict(split)
    assert y_true == split.labels
    y_pred = single.predict(rows)
    model = context.model.eval()
    with torch.inference_mode():
        for index in rng.sample(range(len(split)), 20):
            ids = torch.tensor([split[index]["input_ids"]])
            assert y_pred[index] == int(model(input_ids=ids).logits.argmax(-1))


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["train_hf", "train_torch"])
def test_a_run_shows_progress_early_and_no_library_noise(entry, base_model_dir, config, tmp_path):
    channels = tmp_path / "channels"
    records = labelled_records(config, 400)
    write_labelled(channels / "train" / "train.jsonl", config, records[:320], ids=True, with_id_column=False)
    write_labelled(
        channels / "validation" / "validation.jsonl", config, records[320:], ids=True, with_id_column=False
    )
    # The project root (where runs/ and the default store go) is the config file's folder.
    shutil.copyfile(config.path, tmp_path / "config.toml")
    env = {
        CONFIG_ENV_VAR: str(tmp_path / "config.toml"),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
        # A store that does not exist yet: its tables are created during this run.
        "MLFLOW_TRACKING_URI": f"sqlite:///{(tmp_path / 'new-store' / 'mlflow.db').as_posix()}",
    }
    (tmp_path / "new-store").mkdir()
    command = [
        sys.executable, "-m", f"{PACKAGE}.training.{entry}",
        "--model_name_or_path", str(base_model_dir),
        "--train_dir", str(channels / "train"), "--validation_dir", str(channels / "validation"),
        "--checkpoint_dir", str(tmp_path / "checkpoints"),
        "--max_steps", "6", "--logging_steps", "50", "--batch_size", "8", "--max_seq_length", "32",
        "--eval_strategy", "steps", "--eval_steps", "50", "--report_to", "mlflow",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"step 1/6 \(.*samples/s.*ETA", output), output[-6000:]
    assert "LOAD REPORT" not in output and ESCAPE not in output
    assert "initialised anew (classifier." in output
    assert "database tables" not in output and "alembic" not in output.lower()
