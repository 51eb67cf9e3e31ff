"""Downloads against a local HTTP server on 127.0.0.1 serving archives made by the test."""

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from sr_course.download import DownloadError, Part, download, fetch


class Server:
    """Serves `files` with HTTP Range support; `cut` makes the next N responses stop halfway;
    `fail` makes every response an HTTP error with that status."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut = 0
        self.fail = None
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.ranges.append(self.headers.get("Range"))
                if server.fail:
                    self.send_error(server.fail)
                    return
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut:
                    server.cut -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # drop the connection mid-body
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with Server() as s:
        yield s


def _png_bytes(h, w):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
        buf, "PNG"
    )
    return buf.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_fetch_complete_and_checksum(server, tmp_path):
    data = bytes(range(256)) * 4000
    server.files["/a.bin"] = data
    dest = fetch(
        f"{server.url}/a.bin", tmp_path / "a.bin", hashlib.md5(data).hexdigest(), progress=False
    )
    assert dest.read_bytes() == data
    assert not (tmp_path / "a.bin.part").exists()


def test_fetch_interrupted_then_resumed_with_range(server, tmp_path):
    data = bytes(range(256)) * 8000
    server.files["/a.bin"] = data
    server.cut = 1  # the first response stops halfway
    dest = fetch(
        f"{server.url}/a.bin", tmp_path / "a.bin", hashlib.md5(data).hexdigest(), progress=False
    )
    assert dest.read_bytes() == data
    assert server.ranges[0] is None and server.ranges[1] == f"bytes={len(data) // 2}-"


def test_fetch_resumes_a_part_file_left_by_an_earlier_run(server, tmp_path):
    data = b"x" * 5000 + b"y" * 5000
    server.files["/a.bin"] = data
    (tmp_path / "a.bin.part").write_bytes(data[:3000])
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert server.ranges == ["bytes=3000-"]
    assert (tmp_path / "a.bin").read_bytes() == data


def test_fetch_checksum_mismatch_keeps_nothing(server, tmp_path):
    server.files["/a.bin"] = b"corrupt" * 100
    with pytest.raises(
        DownloadError, match="does not match the published 0+; the corrupt download was deleted"
    ):
        fetch(f"{server.url}/a.bin", tmp_path / "a.bin", "0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_fetch_server_error(server, tmp_path):
    server.fail = 503
    with pytest.raises(DownloadError, match=r"answered HTTP 503 .*use --from-dir"):
        fetch(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False)
    assert not (tmp_path / "a.bin").exists()


def test_download_extracts_and_is_idempotent(server, tmp_path):
    archive = _zip({"DIV2K_valid_HR/0801.png": _png_bytes(16, 24)})
    server.files["/v.zip"] = archive
    parts = {
        "div2k_valid_hr": Part(
            "DIV2K_valid_HR.zip",
            f"{server.url}/v.zip",
            hashlib.md5(archive).hexdigest(),
            "DIV2K",
            "DIV2K/DIV2K_valid_HR",
        )
    }
    report = download(tmp_path, parts=parts, progress=False)
    assert report == {"div2k_valid_hr": "extracted DIV2K_valid_HR.zip"}
    assert (tmp_path / "DIV2K/DIV2K_valid_HR/0801.png").exists()
    n_requests = len(server.ranges)
    assert download(tmp_path, parts=parts, progress=False) == {"div2k_valid_hr": "already present"}
    assert len(server.ranges) == n_requests  # nothing fetched again


def test_download_from_dir_uses_archives_fetched_by_hand(tmp_path):
    archive = _zip({"DIV2K_valid_HR/0801.png": _png_bytes(16, 24)})
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / "DIV2K_valid_HR.zip").write_bytes(archive)
    parts = {
        "div2k_valid_hr": Part(
            "DIV2K_valid_HR.zip",
            "http://127.0.0.1:9/unused",
            hashlib.md5(archive).hexdigest(),
            "DIV2K",
            "DIV2K/DIV2K_valid_HR",
        )
    }
    download(tmp_path / "data", from_dir=hand, parts=parts, progress=False)
    assert (tmp_path / "data/DIV2K/DIV2K_valid_HR/0801.png").exists()
    with pytest.raises(
        DownloadError,
        match="holds neither DIV2K_valid_HR.zip nor an extracted DIV2K_valid_HR/ folder",
    ):
        download(tmp_path / "other", from_dir=tmp_path / "empty", parts=parts, progress=False)


def test_unknown_part():
    with pytest.raises(
        DownloadError, match="unknown part\\(s\\) div2k; choose from div2k_train_hr"
    ):
        download("unused", only=["div2k"])
