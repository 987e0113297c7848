"""The single config file: defaults load, and mistakes are reported with file, table and key."""

from __future__ import annotations

import pytest
from conftest import PACKAGE

from nsmc_sentiment_classifier import config as config_module


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


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "my-model").mkdir()
    text = BASE.replace('source = "nsmc-sample"', 'source = "raw/reviews.csv"').replace(
        'base_model = "some/model"', 'base_model = "my-model"'
    )
    path = write(folder, text + '[train]\ncheckpoint_dir = "ckpt"\n')
    monkeypatch.chdir(tmp_path)  # elsewhere: the working directory must not matter
    config = config_module.load_config(path)
    assert config.root == folder
    assert config.data.source == str(folder / "raw" / "reviews.csv")
    assert config.data.prepared_dir == str(folder / "data" / "prepared")
    assert config.train.checkpoint_dir == str(folder / "ckpt")
    assert config.model.base_model == str(folder / "my-model")


def test_hub_id_is_not_taken_for_a_path(tmp_path):
    config = config_module.load_config(write(tmp_path, BASE))
    assert config.model.base_model == "some/model"
    assert config.data.source == "nsmc-sample"


def test_config_is_found_from_a_subfolder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "notebooks" / "deep").mkdir(parents=True)
    write(project, BASE.replace('package = "x"', f"package = {PACKAGE!r}"))
    # Another project's config.toml on the way up is not this package's.
    write(project / "notebooks", BASE)
    monkeypatch.delenv(config_module.CONFIG_ENV_VAR, raising=False)
    monkeypatch.chdir(project / "notebooks" / "deep")
    assert config_module.default_config_path() == project / "config.toml"


def test_label_format_is_checked(tmp_path):
    text = BASE.replace('label_column = "label"', 'label_column = "label"\nlabel_format = "idz"')
    path = write(tmp_path, text)
    with pytest.raises(config_module.ConfigError, match=r"label_format: must be one of auto, ids, names"):
        config_module.load_config(path)
