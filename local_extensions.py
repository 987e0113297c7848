"""Jinja filters of this template (cookiecutter loads this file through ``_extensions``)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from cookiecutter.config import get_user_config
from cookiecutter.repository import expand_abbreviations, is_repo_url, is_zip_file
from cookiecutter.utils import simple_filter


@simple_filter
def toml(value: object) -> str:
    """A TOML value (string, number, bool or list of them) for any answer.

    Jinja's ``tojson`` writes non-ASCII characters outside the Basic Multilingual Plane (emoji) as
    UTF-16 surrogate pairs, which TOML rejects. JSON without ASCII escaping is valid TOML once DEL,
    the one control character JSON leaves raw, is escaped too.
    """
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _project_module(relative: str) -> object:
    """A module of the project template, loaded from its file (it imports nothing of the package)."""
    name = "_template_" + relative.replace("/", "_").removesuffix(".py")
    if name not in sys.modules:
        path = Path(__file__).resolve().parent / "{{cookiecutter.project_slug}}" / "src"
        path = path / "{{cookiecutter.package_name}}" / relative
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


@simple_filter
def aws_name_prefix(slug: object) -> str:
    """What every SageMaker and S3 name of the project starts with: the generated project's own
    ``aws.names.name_prefix``, so the policies and commands in its docs name what it creates."""
    return str(_project_module("aws/names.py").name_prefix(str(slug)))  # type: ignore[attr-defined]


# Hangul Jamo, CJK symbols to ideographs, Hangul syllables, compatibility ideographs, full-width.
_CJK_RANGES = ((0x1100, 0x11FF), (0x3000, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF))


@simple_filter
def needs_cjk_font(value: object) -> bool:
    """Whether text holds characters that matplotlib's default font cannot draw (Korean, ...)."""
    return any(low <= ord(char) <= high for char in str(value) for low, high in _CJK_RANGES)


@simple_filter
def template_folder(repo_dir: object) -> str:
    """The template's folder as an absolute path, for the hooks to load its readers from.

    cookiecutter passes ``_repo_dir`` as typed (``.``, ``../template``), relative to where it was
    started, while the hooks run inside the new project's folder. It renders the hooks from inside
    the template folder (that is how it finds ``hooks/``), so there the working directory is the
    template folder; cruft gives no ``_repo_dir`` and renders from its clone the same way.
    """
    path = Path(str(repo_dir or ""))
    return str(path) if path.is_absolute() else os.getcwd()


def template_reference(template: str, folder: str, abbreviations: Mapping[str, str]) -> str:
    """What a project stores as ``_template``: a full URL for a remote template (abbreviations
    such as ``gh:`` expanded, ``git+`` kept so cookiecutter knows the VCS), else an absolute path,
    so that replaying or updating works from any folder and machine."""
    expanded = expand_abbreviations(template, dict(abbreviations))
    if is_repo_url(expanded) or "://" in expanded:
        return expanded
    path = Path(expanded).expanduser()
    if path.is_absolute():
        return str(path)
    if is_zip_file(expanded):
        # Unzipped elsewhere: only the shell's folder says where a relative archive was.
        return str(Path(os.environ.get("PWD") or os.getcwd()) / path)
    return folder


@simple_filter
def stored_template(template: object) -> str:
    """:func:`template_reference` of the ``_template`` being rendered (see :func:`template_folder`
    for why the working directory is the template folder)."""
    return template_reference(str(template or ""), os.getcwd(), get_user_config()["abbreviations"])
