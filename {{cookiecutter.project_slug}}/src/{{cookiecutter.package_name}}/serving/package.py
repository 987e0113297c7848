"""Build ``model.tar.gz`` for the Hugging Face inference container and check its layout.

Layout the container expects: model files (config, safetensors weights, tokenizer files) at the
root of the archive, the handlers as ``code/inference.py`` (with the label schemes it imports as
``code/label_schemes/``) and ``code/requirements.txt``, which the container pip-installs at
start-up: ONNX Runtime when the model was exported (``export`` wrote model.onnx,
model.int8.onnx and engines.json next to the weights; they go in with them).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

from .. import label_schemes
from . import inference
from .container import CONTAINER_ONNXRUNTIME

# Model and tokenizer files are JSON, safetensors, vocabularies (txt), sentencepiece or
# tiktoken files. Pickles (pytorch_model.bin, optimizer.pt, training_args.bin) never go in:
# loading them can run code, and the handlers load safetensors only.
MODEL_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".tiktoken", ".onnx")
# Training state that can sit next to a model but is no use to the endpoint.
SKIPPED_FILES = ("trainer_state.json", "training_args.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "sentencepiece.bpe.model")
# Everything inference.py imports ships with the container (torch, transformers, safetensors)
# or in the archive (code/label_schemes/).
REQUIREMENTS = """\
# Installed with pip when the inference container starts. code/inference.py needs torch and
# transformers, which the Hugging Face inference container already has, and ONNX Runtime when
# the model was exported; add packages here only if you extend the handlers.
"""
ONNXRUNTIME_REQUIREMENT = f"onnxruntime=={CONTAINER_ONNXRUNTIME}\n"
SCHEMES_FOLDER = "code/label_schemes"


class PackageError(ValueError):
    """The model folder cannot be packaged or the archive is malformed."""


def model_files(model_dir: str | os.PathLike[str]) -> list[Path]:
    """The files of ``model_dir`` that belong in the archive; checks that it holds a model."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise PackageError(f"{folder}: model folder not found")
    candidates = [p for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES and p.name not in SKIPPED_FILES]
    # Links are followed (a Hugging Face cache snapshot is all links into blobs/) and archived
    # as the files they point to. One that leads nowhere, or to a folder or device, would
    # silently drop a file, so it is an error.
    links = [p for p in candidates if p.is_symlink()]
    broken = sorted(p.name for p in links if not p.exists())
    if broken:
        raise PackageError(f"{folder}: broken link(s) {', '.join(broken)}: their targets do not exist")
    odd = sorted(f"{p.name} -> {p.resolve()}" for p in links if not p.is_file())
    if odd:
        raise PackageError(f"{folder}: link(s) to something other than a regular file: {', '.join(odd)}")
    files = sorted(path for path in candidates if path.is_file())
    names = {path.name for path in files}
    if "config.json" not in names:
        raise PackageError(f"{folder}: no config.json; expected a folder written by save_pretrained")
    if not any(name.endswith(".safetensors") for name in names):
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth"))
        raise PackageError(
            f"{folder}: no .safetensors weights"
            + (f" (found {', '.join(pickled)})" if pickled else "")
            + "; re-save the model with model.save_pretrained(folder, safe_serialization=True)"
        )
    if not names & set(TOKENIZER_FILES):
        raise PackageError(
            f"{folder}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer into the model folder with tokenizer.save_pretrained(folder)"
        )
    engines = folder / inference.ENGINES_FILE
    if engines.name in names:
        try:
            default = json.loads(engines.read_text(encoding="utf-8"))["default"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise PackageError(f"{engines}: unreadable ({error}); run export again") from None
        needed = inference.ONNX_FILES.get(default)
        if needed is not None and needed not in names:
            raise PackageError(
                f"{engines}: the default engine {default} needs {needed}, which is missing; run export again"
            )
    return files


def build_model_archive(model_dir: str | os.PathLike[str], output: str | os.PathLike[str]) -> list[str]:
    """Write ``output`` (model files at the root + ``code/``) and return its checked members."""
    files = model_files(model_dir)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename, so a failed run never leaves a half archive behind.
    handle, partial = tempfile.mkstemp(prefix=output.name, suffix=".partial", dir=output.parent)
    os.close(handle)
    try:
        # dereference: a linked file goes in as the file it points to, never as a link.
        with tarfile.open(partial, "w:gz", dereference=True) as archive:
            for path in files:
                archive.add(path, arcname=path.name, filter=_normalise)
            archive.add(Path(inference.__file__), arcname="code/inference.py", filter=_normalise)
            for module in sorted(Path(label_schemes.__file__).parent.glob("*.py")):
                archive.add(module, arcname=f"{SCHEMES_FOLDER}/{module.name}", filter=_normalise)
            onnx = any(path.suffix == ".onnx" for path in files)
            data = (REQUIREMENTS + (ONNXRUNTIME_REQUIREMENT if onnx else "")).encode("utf-8")
            info = _normalise(tarfile.TarInfo("code/requirements.txt"))
            info.size, info.mtime = len(data), int(time.time())
            archive.addfile(info, io.BytesIO(data))
        members = check_model_archive(partial)
        os.chmod(partial, 0o644)  # mkstemp creates owner-only files
        os.replace(partial, output)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return members


def check_model_archive(path: str | os.PathLike[str]) -> list[str]:
    """Re-open an archive and check the layout the inference container relies on."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = archive.getmembers()
            names = [member.name for member in members]
            handler = archive.extractfile("code/inference.py") if "code/inference.py" in names else None
            handler_source = handler.read() if handler is not None else b""
            requirements = (
                archive.extractfile("code/requirements.txt") if "code/requirements.txt" in names else None
            )
            requirements_text = (
                requirements.read().decode("utf-8", "replace") if requirements is not None else ""
            )
    except (tarfile.TarError, OSError) as error:
        raise PackageError(f"{path}: not a readable .tar.gz archive: {error}") from error
    problems = []
    unsafe = [n for n in names if n.startswith("/") or ".." in Path(n).parts]
    if unsafe:
        problems.append(f"unsafe member paths {unsafe}")
    if any(not (member.isfile() or member.isdir()) for member in members):
        problems.append("links or special files inside")
    root = {n for n in names if "/" not in n}
    for required in ("config.json", "code/inference.py", "code/requirements.txt"):
        if required not in names:
            problems.append(f"missing {required}")
    if not any(n.endswith(".safetensors") for n in root):
        problems.append("no .safetensors weights at the root")
    if not root & set(TOKENIZER_FILES):
        problems.append("no tokenizer files at the root")
    stray = sorted(n for n in names if "/" in n and not n.startswith("code/"))
    if stray:
        # The container reads the model only from the root; a nested folder means a wrong layout.
        problems.append(f"files outside the root and code/: {stray}")
    if b"label_schemes" in handler_source and f"{SCHEMES_FOLDER}/__init__.py" not in names:
        problems.append(f"code/inference.py imports the label schemes, but {SCHEMES_FOLDER}/ is missing")
    if handler_source:
        try:
            compile(handler_source, "code/inference.py", "exec")
        except SyntaxError as error:
            problems.append(f"code/inference.py does not compile: {error}")
    onnx = sorted(n for n in root if n.endswith(".onnx"))
    if onnx and "onnxruntime" not in requirements_text:
        problems.append(f"{', '.join(onnx)} inside but code/requirements.txt does not install onnxruntime")
    if problems:
        raise PackageError(f"{path}: bad model archive: {'; '.join(problems)}")
    return names


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Build-machine user names and permissions mean nothing inside the container.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o644 if info.isfile() else 0o755
    return info
