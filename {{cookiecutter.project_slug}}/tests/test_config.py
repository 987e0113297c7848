"""The single config file: defaults load, and mistakes are reported with file, table and key."""

from __future__ import annotations

import importlib

import pytest
from conftest import PACKAGE

config_module = importlib.import_module(f"{PACKAGE}.config")


def test_default_config_loads(config):
    assert len(config.data.label_names) >= 2
    assert config.model.max_seq_length > 0
    assert config.model.trust_remote_code is False
    assert config.project.package == PACKAGE


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = """
[project]
name = "x"
slug = "x"
package = "x"
[data]
source = "nsmc-sample"
text_column = "document"
label_column = "label"
label_names = ["부정", "긍정"]
[model]
base_model = "some/model"
"""


def test_korean_labels_and_defaults(tmp_path):
    config = config_module.load_config(write(tmp_path, BASE))
    assert config.data.label_names == ("부정", "긍정")
    assert config.train.batch_size == 32


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, BASE + "epochz = 3\n")
    with pytest.raises(config_module.ConfigError, match=r"\[model\].*unknown key\(s\) epochz"):
        config_module.load_config(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, BASE.replace('base_model = "some/model"', 'max_seq_length = "long"'))
    with pytest.raises(config_module.ConfigError, match=r"max_seq_length: expected int"):
        config_module.load_config(path)


def test_duplicate_labels_rejected(tmp_path):
    path = write(tmp_path, BASE.replace('["부정", "긍정"]', '["a", "A "]'))
    with pytest.raises(config_module.ConfigError, match="unique"):
        config_module.load_config(path)


def test_env_var_selects_file(tmp_path, monkeypatch):
    path = write(tmp_path, BASE)
    monkeypatch.setenv(config_module.CONFIG_ENV_VAR, str(path))
    assert config_module.load_config().path == str(path)
