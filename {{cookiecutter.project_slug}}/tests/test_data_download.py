"""NSMC download: checksums, local copies, offline errors (loopback only, no internet)."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

from nsmc_sentiment_classifier.data import download

pytestmark = pytest.mark.engine

# Set by the template's CI to a folder with the real upstream files (../shared/data/nsmc).
NSMC_DIR = os.environ.get("NSMC_DIR")
needs_nsmc = pytest.mark.skipif(
    not NSMC_DIR or not Path(NSMC_DIR, "ratings_test.txt").exists(),
    reason="set NSMC_DIR to a folder holding ratings_train.txt and ratings_test.txt",
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_error_says_what_to_do(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(download.DownloadError, match=r"could not download .*--from FOLDER"):
        download.download_nsmc(tmp_path, base_url=url, timeout=5)
    assert not list(tmp_path.iterdir())  # no partial files left behind


def test_corrupt_local_copy_is_rejected(tmp_path):
    source = tmp_path / "copy"
    source.mkdir()
    for name in download.NSMC_FILES:
        (source / name).write_text("id\tdocument\tlabel\n1\t가짜\t0\n", encoding="utf-8")
    with pytest.raises(download.DownloadError, match="sha256 .* does not match"):
        download.download_nsmc(tmp_path / "cache", local_copy=source)
    assert not any((tmp_path / "cache").iterdir())


@needs_nsmc
def test_download_over_http_verifies_and_caches(tmp_path):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=NSMC_DIR)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        folder = download.download_nsmc(tmp_path, base_url=url)
        for name, digest in download.NSMC_FILES.items():
            assert download.sha256_of(folder / name) == digest
        # A second call finds verified files and does not fetch again.
        server.shutdown()
        assert download.download_nsmc(tmp_path, base_url=url) == folder
    finally:
        server.shutdown()
        server.server_close()


@needs_nsmc
def test_full_nsmc_source_after_local_download(tmp_path, monkeypatch):
    monkeypatch.setenv(download.CACHE_ENV_VAR, str(tmp_path))
    download.download_nsmc(local_copy=Path(str(NSMC_DIR)))
    from nsmc_sentiment_classifier.data import io, sources

    files = sources.resolve_source("nsmc")
    assert len(io.read_table(files["train"])) == 150_000
    assert len(io.read_table(files["test"])) == 50_000
