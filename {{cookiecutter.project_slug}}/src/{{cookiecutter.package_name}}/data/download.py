"""Fetch the full NSMC corpus once, verify it, and keep it in a local cache."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

NSMC_BASE_URL = "https://raw.githubusercontent.com/e9t/nsmc/master/"
# Pinned to the upstream files (commit cc0670e8), so a changed or truncated download is caught.
NSMC_FILES = {
    "ratings_train.txt": "e03b7d14e9e41be8d464a28057cd25d7396c53e67aa7fd5f7e552c59b0ee2940",
    "ratings_test.txt": "8ac9f64052f11dbf6ae0acb5e038f03d90a76f0eda7820cfb3a92d02edfcebda",
}
CACHE_ENV_VAR = f"{__package__.split('.')[0].upper()}_CACHE"


class DownloadError(RuntimeError):
    """A download or checksum failed; the message says what to do instead."""


def cache_dir() -> Path:
    """``$<PACKAGE>_CACHE``, else ``$XDG_CACHE_HOME/<package>``, else ``~/.cache/<package>``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / __package__.split(".")[0]


def nsmc_dir() -> Path:
    return cache_dir() / "nsmc"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_nsmc(
    target: Path | None = None,
    *,
    local_copy: Path | None = None,
    base_url: str = NSMC_BASE_URL,
    timeout: float = 30.0,
) -> Path:
    """Put verified NSMC files in ``target`` (default: the cache) and return that folder.

    ``local_copy`` takes the files from a folder instead of the network (offline machines).
    Files already present and valid are not fetched again.
    """
    target = Path(target or nsmc_dir())
    target.mkdir(parents=True, exist_ok=True)
    for name, expected in NSMC_FILES.items():
        destination = target / name
        if destination.exists() and sha256_of(destination) == expected:
            log.info("%s already present and verified", destination)
            continue
        partial = destination.with_suffix(".part")
        if local_copy is not None:
            source = Path(local_copy) / name
            if not source.exists():
                raise DownloadError(f"{source}: not found; the folder must hold {', '.join(NSMC_FILES)}")
            shutil.copyfile(source, partial)
        else:
            _fetch(base_url + name, partial, timeout)
        actual = sha256_of(partial)
        if actual != expected:
            partial.unlink()
            raise DownloadError(
                f"{partial}: sha256 {actual} does not match the published NSMC file ({expected}); "
                "the file is corrupt or a different version"
            )
        partial.replace(destination)
        log.info("saved %s (sha256 verified)", destination)
    return target


def _fetch(url: str, destination: Path, timeout: float) -> None:
    # Imported here: the cookiecutter hooks import this package's data modules without deps.
    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(destination, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=destination.stem) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        destination.unlink(missing_ok=True)
        raise DownloadError(
            f"could not download {url}: {getattr(error, 'reason', error)}. If this machine is "
            "offline, copy ratings_train.txt and ratings_test.txt here from elsewhere and run "
            "`data download --from FOLDER`"
        ) from error
