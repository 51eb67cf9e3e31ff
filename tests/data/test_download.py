"""Downloads against a local HTTP server on 127.0.0.1 serving archives made by the test."""

import hashlib
import io
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import sr_course.data.download as download_module
from sr_course.data.download import (
    BENCHMARK_COUNTS,
    DownloadError,
    Part,
    archive_problem,
    benchmark_members_problem,
    download,
    fetch,
)


class Server:
    """Serves `files` with HTTP Range support; `cut` makes the next N responses stop halfway;
    `fail` makes every response an HTTP error with that status. `framing`: 'length' (Content-Length),
    'chunked' (Transfer-Encoding: chunked) or 'close' (neither: the body ends when the connection
    closes, so a cut looks complete). `wrong_offset`: ranges are answered from byte 0 (206 anyway).
    `trickle`: the next N responses send half the body, then one byte every 20 ms."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut = 0
        self.fail = None
        self.framing = "length"
        self.wrong_offset = False
        self.trickle = 0
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
                    if server.wrong_offset:
                        start = 0
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if server.cut:
                    server.cut -= 1
                    body_sent = body[: len(body) // 2]
                else:
                    body_sent = body
                if server.framing == "length":
                    self.send_header("Content-Length", str(len(body)))
                elif server.framing == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                if server.trickle and server.framing == "length":
                    server.trickle -= 1
                    half = len(body) // 2
                    self.wfile.write(body[:half])
                    try:
                        for k in range(half, len(body)):
                            self.wfile.write(body[k : k + 1])
                            self.wfile.flush()
                            time.sleep(0.02)
                    except OSError:  # the client gave up on us
                        pass
                    self.close_connection = True
                    return
                if server.framing == "chunked":
                    for i in range(0, len(body_sent), 4096):
                        piece = body_sent[i : i + 4096]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    if body_sent is body:
                        self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(body_sent)
                self.wfile.flush()
                if body_sent is not body or server.framing == "close":
                    self.connection.shutdown(2)  # drop the connection (mid-body when cut)
                    self.close_connection = True

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


# --- archives without a published checksum (the benchmark package) ---------------------------------


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _benchmark_tar(counts=None) -> bytes:
    entries = {}
    for name, count in (counts or BENCHMARK_COUNTS).items():
        for k in range(count):
            entries[f"benchmark/{name}/HR/img{k}.png"] = _png_bytes(16, 24)
            entries[f"benchmark/{name}/LR_bicubic/X4/img{k}x4.png"] = _png_bytes(4, 6)
    return _tar(entries)


@pytest.fixture(scope="module")
def benchmark_tar():
    return _benchmark_tar()


def _benchmark_part(url):
    return {"benchmark": Part("benchmark.tar", url, None, ".", "benchmark")}


def test_benchmark_cut_without_length_is_deleted_not_kept(server, tmp_path, benchmark_tar):
    # The fault: a transfer without Content-Length cut short looked complete and was kept as
    # downloads/benchmark.tar, which every later run reused and failed on without a fix.
    server.files["/b.tar"] = benchmark_tar
    server.framing, server.cut = "close", 1
    with pytest.raises(DownloadError) as err:
        download(tmp_path, parts=_benchmark_part(f"{server.url}/b.tar"), progress=False)
    assert str(err.value).startswith(f"benchmark.tar from {server.url}/b.tar is broken (")
    assert "the broken download was deleted: run the same command again" in str(err.value)
    assert not (tmp_path / "downloads" / "benchmark.tar").exists()
    assert not (tmp_path / "downloads" / "benchmark.tar.part").exists()
    # the next run fetches it whole
    report = download(tmp_path, parts=_benchmark_part(f"{server.url}/b.tar"), progress=False)
    assert report == {"benchmark": "extracted benchmark.tar"}
    assert (tmp_path / "benchmark" / "SHA256").read_text().split()[0] == hashlib.sha256(
        benchmark_tar
    ).hexdigest()


def test_a_broken_archive_under_its_final_name_is_replaced(server, tmp_path, benchmark_tar, capsys):
    server.files["/b.tar"] = benchmark_tar
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "benchmark.tar").write_bytes(benchmark_tar[: len(benchmark_tar) // 3])
    download(tmp_path, parts=_benchmark_part(f"{server.url}/b.tar"), progress=False)
    assert (tmp_path / "downloads" / "benchmark.tar").read_bytes() == benchmark_tar
    assert "benchmark.tar was broken (" in capsys.readouterr().out
    assert len(list((tmp_path / "benchmark" / "Set5" / "HR").glob("*.png"))) == 5


def test_archive_checks_name_what_is_wrong(tmp_path, benchmark_tar):
    def check(data):
        path = tmp_path / "a.tar"
        path.write_bytes(data)
        return archive_problem(path, benchmark_members_problem)

    assert check(benchmark_tar) is None
    members = tarfile.open(fileobj=io.BytesIO(benchmark_tar))
    first_data = members.getmembers()[0].offset_data
    assert check(benchmark_tar[: first_data + 100]).startswith(
        "it is truncated or corrupt: ReadError"
    )
    boundary = members.getmembers()[2].offset  # cut exactly between two members
    assert check(benchmark_tar[:boundary]) == (
        "the tar archive ends without its end-of-archive marker: it was cut short"
    )
    assert check(b"<html>503</html>") == (
        "it is neither a zip nor a tar archive (cut short, or an error page)"
    )
    assert check(_benchmark_tar({**BENCHMARK_COUNTS, "B100": 99})) == (
        "it holds 99 HR and 99 x4 LR images of B100, not 100 of each"
    )


def test_resume_answered_from_the_wrong_offset_starts_over(server, tmp_path):
    data = bytes(range(256)) * 4000
    server.files["/a.bin"] = data
    server.wrong_offset = True
    (tmp_path / "a.bin.part").write_bytes(data[:1000])
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == data  # not data[:1000] + data
    assert server.ranges == ["bytes=1000-", None]


def test_cut_chunked_transfer_is_retried_then_reported_in_one_sentence(
    server, tmp_path, monkeypatch
):
    monkeypatch.setattr("sr_course.data.download.time.sleep", lambda s: None)
    data = bytes(range(256)) * 4000
    server.files["/a.bin"] = data
    server.framing, server.cut = "chunked", 1  # IncompleteRead once, then a whole transfer
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == data
    server.cut = 3
    with pytest.raises(DownloadError) as err:
        fetch(f"{server.url}/a.bin", tmp_path / "b.bin", progress=False)
    assert str(err.value) == (
        f"downloading {server.url}/a.bin failed 3 times (the connection was cut mid-transfer); run "
        f"the same command again to resume from {tmp_path / 'b.bin.part'}, or fetch the file by other "
        "means and use --from-dir"
    )


def test_a_trickling_transfer_is_dropped_and_resumed_then_reported_in_one_sentence(
    server, tmp_path, monkeypatch
):
    # The fault: one byte every 1.5 s never ended the download (the timeout is per socket read).
    monkeypatch.setattr(
        download_module, "time", SimpleNamespace(sleep=lambda s: None, monotonic=time.monotonic)
    )
    data = bytes(range(256)) * 400
    server.files["/a.bin"] = data
    server.trickle = 1  # half the file, then a trickle; the retry resumes from the .part
    md5 = hashlib.md5(data).hexdigest()
    fetch(
        f"{server.url}/a.bin",
        tmp_path / "a.bin",
        md5,
        progress=False,
        stall_seconds=0.3,
        stall_bytes=1024,
    )
    assert (tmp_path / "a.bin").read_bytes() == data
    assert server.ranges[0] is None and int(server.ranges[1].split("=")[1][:-1]) >= len(data) // 2
    server.trickle = 3
    with pytest.raises(DownloadError) as err:
        fetch(
            f"{server.url}/a.bin",
            tmp_path / "b.bin",
            progress=False,
            stall_seconds=0.3,
            stall_bytes=1024,
        )
    message = str(err.value)
    assert message.startswith(
        f"downloading {server.url}/a.bin failed 3 times (the transfer stalled: "
    )
    assert message.endswith(
        f"bytes in 0.3 s); run the same command again to resume from {tmp_path / 'b.bin.part'}, or "
        "fetch the file by other means and use --from-dir"
    )
    assert (tmp_path / "b.bin.part").stat().st_size >= len(data) // 2  # kept for the next run
