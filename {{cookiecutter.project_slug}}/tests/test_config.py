"""The single config file: defaults load, and mistakes are reported with file, table and key."""

from __future__ import annotations

import re

import pytest
from conftest import PACKAGE

from nsmc_sentiment_classifier import config as config_module


def test_default_config_loads(config):
    assert len(config.data.label_names) >= 2
    assert config.options.max_seq_length > 0
    assert config.options.trust_remote_code is False
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
    assert config.options.batch_size == 32


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
    assert config.options.checkpoint_dir == str(folder / "ckpt")
    assert config.options.model_name_or_path == str(folder / "my-model")


def test_hub_id_is_not_taken_for_a_path(tmp_path):
    config = config_module.load_config(write(tmp_path, BASE))
    assert config.options.model_name_or_path == "some/model"
    assert config.data.source == "nsmc-sample"


def test_config_is_found_from_a_subfolder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "notebooks" / "deep").mkdir(parents=True)
    write(project, BASE.replace('package = "x"', f"package = {PACKAGE!r}"))
    monkeypatch.delenv(config_module.CONFIG_ENV_VAR, raising=False)
    monkeypatch.chdir(project / "notebooks" / "deep")
    assert config_module.default_config_path() == project / "config.toml"


def project_in_project(tmp_path, inner_config):
    """This package's project with another one inside it (a copy, an experiment, a clone)."""
    outer = tmp_path / "outer"
    inner = outer / "experiments" / "inner"
    (inner / "src").mkdir(parents=True)
    write(outer, BASE.replace('package = "x"', f"package = {PACKAGE!r}"))
    if inner_config is not None:
        write(inner, inner_config)
    return outer, inner


def test_invalid_nearest_config_is_reported_not_skipped(tmp_path, monkeypatch):
    """A syntax error in the project's own file must not send the command to a parent project."""
    broken = BASE.replace('package = "x"', f"package = {PACKAGE!r}").replace('name = "x"', 'name = "x')
    _, inner = project_in_project(tmp_path, broken)
    monkeypatch.delenv(config_module.CONFIG_ENV_VAR, raising=False)
    monkeypatch.chdir(inner / "src")
    with pytest.raises(config_module.ConfigError) as caught:
        config_module.default_config_path()
    message = str(caught.value)
    assert message.startswith(f"{inner / 'config.toml'}:3:"), message
    assert "not valid TOML" in message and "\n" not in message


def test_toml_error_names_file_line_and_column(tmp_path):
    path = write(tmp_path, BASE.replace('label_column = "label"', "label_column = label"))
    line = BASE.splitlines().index('label_column = "label"') + 1
    with pytest.raises(
        config_module.ConfigError, match=rf"^{re.escape(str(path))}:{line}:16: not valid TOML: "
    ):
        config_module.load_config(path)


def test_nearest_config_of_another_package_is_an_error(tmp_path, monkeypatch):
    _, inner = project_in_project(tmp_path, BASE)
    monkeypatch.delenv(config_module.CONFIG_ENV_VAR, raising=False)
    monkeypatch.chdir(inner)
    with pytest.raises(config_module.ConfigError, match="config file of the package 'x', not of"):
        config_module.default_config_path()


@pytest.mark.parametrize("marker", ["pyproject.toml", ".git"])
def test_search_stops_at_a_project_root_without_config(marker, tmp_path, monkeypatch):
    _, inner = project_in_project(tmp_path, None)
    if marker == ".git":
        (inner / marker).mkdir()
    else:
        (inner / marker).write_text("[project]\nname = 'inner'\n", encoding="utf-8")
    monkeypatch.delenv(config_module.CONFIG_ENV_VAR, raising=False)
    monkeypatch.chdir(inner / "src")
    with pytest.raises(
        config_module.ConfigError, match=f"no config.toml in {re.escape(str(inner))}, the root"
    ):
        config_module.default_config_path()


def test_label_format_is_checked(tmp_path):
    text = BASE.replace('label_column = "label"', 'label_column = "label"\nlabel_format = "idz"')
    path = write(tmp_path, text)
    with pytest.raises(config_module.ConfigError, match=r"label_format: must be one of auto, ids, names"):
        config_module.load_config(path)
