"""``package``: model.tar.gz layout for the inference container, checked after writing."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from nsmc_sentiment_classifier import cli, label_schemes
from nsmc_sentiment_classifier.serving import inference, package


@pytest.fixture()
def model_with_training_leftovers(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "training_args.bin").write_bytes(b"pickle")
    (folder / "optimizer.pt").write_bytes(b"pickle")
    (folder / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "model.safetensors").write_bytes(b"x")
    return folder


def read_member(archive: tarfile.TarFile, name: str) -> bytes:
    member = archive.extractfile(name)
    assert member is not None, f"{name} is not a file in the archive"
    return member.read()


def test_package_layout_and_loading(model_with_training_leftovers, tmp_path, capsys):
    out = tmp_path / "dist" / "model.tar.gz"
    model = str(model_with_training_leftovers)
    assert cli.main(["package", "--model", model, "--out", str(out)]) == 0
    assert "layout checked" in capsys.readouterr().out
    with tarfile.open(out, "r:gz") as archive:
        names = archive.getnames()
        handler = read_member(archive, "code/inference.py")
        requirements = read_member(archive, "code/requirements.txt").decode()
        archive.extractall(tmp_path / "extracted", filter="data")
    # transformers 4.x also saves special_tokens_map.json with a tokenizer (5.x folds it into
    # tokenizer_config.json): the model's own files, whichever version saved them.
    expected = {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "code/inference.py",
        "code/requirements.txt",
        *(f"code/label_schemes/{p.name}" for p in Path(label_schemes.__file__).parent.glob("*.py")),
    }
    saved = {p.name for p in Path(model_with_training_leftovers).iterdir()}
    expected |= saved & {"special_tokens_map.json"}
    assert sorted(names) == sorted(expected)
    assert handler == Path(inference.__file__).read_bytes()
    # Only comments: everything the handlers import is in the container already.
    assert all(not line.strip() or line.startswith("#") for line in requirements.splitlines())
    assert oct(out.stat().st_mode & 0o777) == "0o644"

    extracted = inference.model_fn(str(tmp_path / "extracted"))
    original = inference.model_fn(str(model_with_training_leftovers))
    request = inference.Request(["재밌다", "노잼"])
    assert inference.predict_fn(request, extracted).scores == (inference.predict_fn(request, original).scores)


def test_package_refuses_pickled_weights(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    out = tmp_path / "model.tar.gz"
    assert cli.main(["package", "--model", str(folder), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "no .safetensors weights (found pytorch_model.bin)" in error
    assert "safe_serialization" in error
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_check_rejects_a_nested_layout(tiny_model_dir, tmp_path):
    bad = tmp_path / "nested.tar.gz"
    with tarfile.open(bad, "w:gz") as archive:
        archive.add(tiny_model_dir, arcname="model")
    with pytest.raises(package.PackageError) as caught:
        package.check_model_archive(bad)
    message = str(caught.value)
    assert "missing config.json" in message and "missing code/inference.py" in message
    assert "files outside the root" in message


def test_a_cache_snapshot_of_links_is_packaged_as_files(tiny_model_dir, tmp_path, capsys):
    # The Hugging Face cache layout: snapshots/<revision>/<file> -> ../../blobs/<hash>.
    blobs, snapshot = tmp_path / "cache" / "blobs", tmp_path / "cache" / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for number, source in enumerate(sorted(p for p in tiny_model_dir.iterdir() if p.is_file())):
        blob = blobs / f"blob{number}"
        blob.write_bytes(source.read_bytes())
        (snapshot / source.name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    out = tmp_path / "model.tar.gz"
    assert cli.main(["package", "--model", str(snapshot), "--out", str(out)]) == 0, capsys.readouterr().err
    with tarfile.open(out) as archive:
        members = {member.name: member for member in archive.getmembers()}
        assert all(member.isfile() for member in members.values()), "links must go in as files"
        assert read_member(archive, "config.json") == (tiny_model_dir / "config.json").read_bytes()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("gone.json", "broken link(s) tokenizer.json: their targets do not exist"),
        ("a-folder", "link(s) to something other than a regular file: tokenizer.json ->"),
    ],
    ids=["broken", "to-a-folder"],
)
def test_a_link_that_is_not_a_file_is_named(tiny_model_dir, tmp_path, target, reason, capsys):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (tmp_path / "a-folder").mkdir()
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer.json").symlink_to(tmp_path / target)
    assert cli.main(["package", "--model", str(folder), "--out", str(tmp_path / "m.tar.gz")]) == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err
    assert not (tmp_path / "m.tar.gz").exists()


def test_a_multi_label_model_is_packaged_with_its_scheme_and_decides_the_same(
    multi_label_model_dir, tmp_path
):
    out = tmp_path / "model.tar.gz"
    package.build_model_archive(multi_label_model_dir, out)
    with tarfile.open(out, "r:gz") as archive:
        names = archive.getnames()
        shipped = read_member(archive, "code/label_schemes/multi_label.py")
        archive.extractall(tmp_path / "extracted", filter="data")
    assert "code/label_schemes/label_values.py" in names
    assert shipped == Path(label_schemes.multi_label.__file__).read_bytes()
    extracted = inference.model_fn(str(tmp_path / "extracted"))
    assert extracted.scheme == inference.model_fn(str(multi_label_model_dir)).scheme
    recorded = extracted.scheme.model_config()
    assert recorded["label_scheme"] == "multi_label"
    assert recorded["label_thresholds"] == [0.01, 0.02, 0.99, 0.5]
