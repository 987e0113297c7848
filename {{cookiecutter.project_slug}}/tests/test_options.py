"""The training options are one typed definition: the type checker knows their names, and the
config file, the flags and SageMaker's hyperparameters all reach every option."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PACKAGE

from nsmc_sentiment_classifier.errors import UsageError
from nsmc_sentiment_classifier.options import (
    BY_NAME,
    OPTIONS,
    TrainOptions,
)
from nsmc_sentiment_classifier.training import (
    options as options_module,
)
from nsmc_sentiment_classifier.training.pipeline import make_schedule

PROJECT_ROOT = Path(__file__).resolve().parents[1]

USES_OPTIONS = """
from PACKAGE.options import TrainOptions


def peak(options: TrainOptions) -> float:
    return options.NAME
"""


@pytest.mark.engine
def test_a_misspelt_option_is_a_type_error(tmp_path):
    """The project's own mypy configuration rejects ``options.learnig_rate``."""
    for name, attribute in (("misspelt", "learnig_rate"), ("spelt_right", "learning_rate")):
        text = USES_OPTIONS.replace("PACKAGE", PACKAGE).replace("NAME", attribute)
        (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(PROJECT_ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(tmp_path / "misspelt.py"),
            str(tmp_path / "spelt_right.py"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert '"TrainOptions" has no attribute "learnig_rate"' in output, output
    assert "misspelt.py:6:" in output and "spelt_right.py" not in output, output


def test_every_option_but_the_folders_and_the_run_id_is_a_config_key():
    flag_only = {option.name for option in OPTIONS if option.table is None}
    assert flag_only == {"train_dir", "validation_dir", "test_dir", "model_dir", "output_data_dir", "run_id"}
    assert {option.table for option in OPTIONS} == {None, "model", "data", "train"}


def test_max_steps_from_the_config_file_sets_the_schedule(project_dir):
    config_path = project_dir / "config.toml"
    text = config_path.read_text(encoding="utf-8").replace("max_steps = -1\n", "")
    config_path.write_text(text.replace("[train]\n", "[train]\nmax_steps = 7\npadding = 'longest'\n", 1))
    options = options_module.parse_options([], {})
    assert (options.max_steps, options.padding) == (7, "longest")
    assert make_schedule(options, train_examples=10_000, world_size=1).total_steps == 7
    # A flag still overrides the file.
    assert options_module.parse_options(["--max_steps", "3"], {}).max_steps == 3


def test_every_option_reaches_the_sagemaker_hyperparameters_and_back():
    """What a launcher sends is read back by the job as the same values."""
    if importlib.util.find_spec(f"{PACKAGE}.aws") is None:
        pytest.skip("generated without the sagemaker part")
    from nsmc_sentiment_classifier import options as typed
    from nsmc_sentiment_classifier.aws.training import parse_overrides

    options = TrainOptions(model_name_or_path="org/model", run_id="job-1", group_by_length=False, epochs=0.5)
    sent = typed.to_hyperparameters(options)
    assert set(sent) == set(typed.HYPERPARAMETERS) and sent["group_by_length"] == "false"
    received = typed.from_hyperparameters(sent, "SM_HPS")
    assert all(received[name] == getattr(options, name) for name in typed.HYPERPARAMETERS)
    assert parse_overrides(["max-steps=5", "mixed_precision=BF16"]) == {
        "max_steps": "5",
        "mixed_precision": "BF16",
    }
    with pytest.raises(UsageError, match="--hp max_steps: expected an integer"):
        parse_overrides(["max_steps=many"])


def _random_value(option, rng):
    """A value the option accepts: a choice, a number within its range, a string, a bool."""
    if option.choices:
        return rng.choice(option.choices)
    if option.kind is bool:
        return rng.random() < 0.5
    if option.kind is str:
        return rng.choice(["", "x", "org/model-name", "리뷰 모델", "a b", "'quoted'", "C:\\models\\m"])
    low = option.low if option.low is not None else -1000
    high = option.high if option.high is not None else low + 1000
    if option.kind is int:
        value = rng.randint(int(math.ceil(low)), int(high))
        while option.problem(value):
            value += 1
        return value
    value = rng.choice([low, high, rng.uniform(low, high), rng.uniform(low, high) * 1e-6 + low])
    while option.problem(value):
        value = rng.uniform(low, high)
    return value


def test_random_options_survive_hyperparameters_and_flags():
    """Thousands of random option sets: the strings a launcher sends (SM_HPS) and the flags a
    torchrun child gets parse back to the same values."""
    from nsmc_sentiment_classifier import options as typed

    seed = int(os.environ.get("OPTIONS_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    parser = options_module.build_parser()
    for _ in range(2000):
        values = {
            option.name: _random_value(option, rng)
            for option in OPTIONS
            if option.name in typed.HYPERPARAMETERS
        }
        options = TrainOptions(**values)
        sent = typed.to_hyperparameters(options)
        received = typed.from_hyperparameters(json.loads(json.dumps(sent)), "SM_HPS")
        for name, value in values.items():
            if value == "":
                assert name not in received, (seed, name)
                continue
            expected = value.strip() if isinstance(value, str) and not BY_NAME[name].choices else value
            if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                expected = value[1:-1]
            assert received[name] == expected, (seed, name, value, sent[name], received[name])
        flags = [item for name, text in sent.items() for item in (f"--{name}", text)]
        argv = typed.to_argv(parser.parse_args(flags))
        assert parser.parse_args(argv) == parser.parse_args(flags), (seed, flags)
