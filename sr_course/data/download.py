"""Download and unpack the course data: DIV2K (train/valid, HR and LR bicubic x4) and the SR benchmark
package (Set5, Set14, B100, Urban100). The CLI is data_prep/download.py.

- Checksums: DIV2K's published MD5s are verified. The benchmark package has no published checksum, so
  before it takes its final name its size is checked against the server's, the whole archive is read
  (a cut tar has no end-of-archive marker or ends inside a member) and its contents are counted
  (every set's HR and x4 LR images); after extraction every HR is checked against its LR, and the
  SHA-256 seen is printed and stored beside it.
- Never a partial file under its final name: bytes go to `<archive>.part` and are renamed only after
  the checks pass. An interrupted download resumes from the .part (HTTP Range; a server that answers
  from another offset makes it start over); a cut transfer is retried; a failed check deletes the
  .part and says so. An archive already under its final name that fails the checks is deleted and
  fetched again.
- Idempotent: an archive already downloaded is used as it is; an extracted part is not extracted again.
- Offline clusters: `from_dir` takes archives (or already extracted folders) fetched by any means.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..course import BENCHMARK_SETS, SPLITS
from ..errors import UserError
from .lists import crop_to_multiple, read_image


@dataclass(frozen=True)
class Part:
    """One downloadable archive and where its contents go under the data root."""

    archive: str
    url: str
    md5: str | None
    extract_to: str  # folder under the data root
    provides: str  # what must exist afterwards (relative to the data root)


DIV2K = "http://data.vision.ee.ethz.ch/cvl/DIV2K"
PARTS = {
    "div2k_train_hr": Part(
        "DIV2K_train_HR.zip",
        f"{DIV2K}/DIV2K_train_HR.zip",
        "bdc2d9338d4e574fe81bf7d158758658",
        "DIV2K",
        "DIV2K/DIV2K_train_HR",
    ),
    "div2k_train_lr": Part(
        "DIV2K_train_LR_bicubic_X4.zip",
        f"{DIV2K}/DIV2K_train_LR_bicubic_X4.zip",
        "76c43ec4155851901ebbe8339846d93d",
        "DIV2K",
        "DIV2K/DIV2K_train_LR_bicubic/X4",
    ),
    "div2k_valid_hr": Part(
        "DIV2K_valid_HR.zip",
        f"{DIV2K}/DIV2K_valid_HR.zip",
        "9fcdda83005c5e5997799b69f955ff88",
        "DIV2K",
        "DIV2K/DIV2K_valid_HR",
    ),
    "div2k_valid_lr": Part(
        "DIV2K_valid_LR_bicubic_X4.zip",
        f"{DIV2K}/DIV2K_valid_LR_bicubic_X4.zip",
        "21962de700c8d368c6ff83314480eff0",
        "DIV2K",
        "DIV2K/DIV2K_valid_LR_bicubic/X4",
    ),
    "benchmark": Part(
        "benchmark.tar", "https://cv.snu.ac.kr/research/EDSR/benchmark.tar", None, ".", "benchmark"
    ),
}
# Images per benchmark set in a complete archive (the course manifest's SPLITS).
BENCHMARK_COUNTS = {name: SPLITS[name].images for name in BENCHMARK_SETS}


class DownloadError(UserError, RuntimeError):
    """A download or extraction that failed; the message names the file or URL and what to do."""


def file_digest(path: Path, algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _range_start(response) -> tuple[int | None, int | None]:
    """(first byte, total size) of a 206 answer's Content-Range 'bytes START-END/TOTAL'."""
    value = response.headers.get("Content-Range", "")
    try:
        span, _, total = value.removeprefix("bytes ").partition("/")
        return int(span.split("-")[0]), (int(total) if total.strip() not in ("", "*") else None)
    except ValueError:
        return None, None


def fetch(
    url: str,
    dest: Path,
    md5: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
    verify=None,
    stall_seconds: float = 60.0,
    stall_bytes: int = 64 * 1024,
) -> Path:
    """Download `url` to `dest` (resuming `dest.part`), check it, then rename it into place.

    timeout bounds each socket read; a transfer that goes on but brings fewer than `stall_bytes`
    in `stall_seconds` (a connection trickling a byte at a time) is stalled: it is dropped and
    resumed from the .part like a cut connection.

    md5: the published checksum. verify(path) -> None or the problem in a few words: the check for
    archives without a published checksum (see archive_problem). Returns dest. An existing dest is
    used as it is when it passes the same checks; one that fails the MD5 is refused, one that fails
    `verify` is deleted (it is ours: a broken earlier download) and fetched again.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if md5 and file_digest(dest) != md5:
            raise DownloadError(
                f"{dest} exists but its MD5 is not the published {md5}: delete it and run again"
            )
        problem = verify(dest) if (verify and not md5) else None
        if not problem:
            return dest
        dest.unlink()
        print(f"{dest} was broken ({problem}); deleted it, downloading it again")
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = None
                if have and response.status == 206:
                    start, total = _range_start(response)
                    if start != have:  # an answer from another offset cannot be appended
                        response.close()
                        part.unlink()
                        raise ConnectionError(
                            f"the server resumed at byte {start}, not {have}; starting over"
                        )
                elif have:  # the server ignored the range: start over
                    have = 0
                if total is None and length is not None:
                    total = have + int(length)
                with (
                    open(part, "ab" if have else "wb") as f,
                    tqdm(
                        total=total,
                        initial=have,
                        unit="B",
                        unit_scale=True,
                        desc=dest.name,
                        disable=not progress,
                    ) as bar,
                ):
                    mark, got_at_mark, got = time.monotonic(), 0, 0
                    # read1: what has arrived (up to 1 MB), so a trickle is seen as one
                    for chunk in iter(lambda: response.read1(1 << 20), b""):
                        f.write(chunk)
                        bar.update(len(chunk))
                        got += len(chunk)
                        if time.monotonic() - mark >= stall_seconds:
                            if got - got_at_mark < stall_bytes:
                                raise ConnectionError(
                                    f"the transfer stalled: {got - got_at_mark} bytes in "
                                    f"{stall_seconds:g} s"
                                )
                            mark, got_at_mark = time.monotonic(), got
                size = part.stat().st_size
                if total is not None and size < total:
                    raise ConnectionError(f"connection closed at {size} of {total} bytes")
                if total is not None and size > total:
                    part.unlink()
                    raise ConnectionError(f"got {size} bytes, more than the {total} announced")
            break
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:  # range not satisfiable: the .part is already complete
                break
            raise DownloadError(
                f"{url} answered HTTP {err.code} ({err.reason}); try again later or use --from-dir"
            ) from None
        except (
            urllib.error.URLError,
            http.client.HTTPException,  # IncompleteRead: a chunked transfer cut short
            ConnectionError,
            TimeoutError,
            OSError,
        ) as err:
            if attempt == retries:
                why = (
                    "the connection was cut mid-transfer"
                    if isinstance(err, http.client.IncompleteRead)
                    else str(err).splitlines()[0]
                    if str(err)
                    else type(err).__name__
                )
                raise DownloadError(
                    f"downloading {url} failed {retries} times ({why}); run the same command again to resume "
                    f"from {part}, or fetch the file by other means and use --from-dir"
                ) from None
            time.sleep(min(2.0 * attempt, 10.0))
    if md5:
        got = file_digest(part)
        if got != md5:
            part.unlink()
            raise DownloadError(
                f"{dest.name}: MD5 {got} does not match the published {md5}; the corrupt download was deleted, run again"
            )
    elif verify:
        problem = verify(part)
        if problem:
            part.unlink()
            raise DownloadError(
                f"{dest.name} from {url} is broken ({problem}); the broken download was deleted: run the "
                "same command again, or fetch the file by other means and use --from-dir"
            )
    os.replace(part, dest)
    return dest


def archive_problem(path: Path, expect=None) -> str | None:
    """None when `path` is a complete, readable zip or tar archive whose member names pass
    `expect(names) -> None or problem`; else the problem in a few words.

    Every member is read to the end, so a transfer cut inside a member is found; a tar cut at a member
    boundary lacks tar's end-of-archive marker (two zero blocks), which is checked too.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                names = z.namelist()
            if bad:
                return f"member {bad} is corrupt"
        elif tarfile.is_tarfile(path):
            names = []
            with tarfile.open(path) as t:
                for member in t:
                    names.append(member.name)
                    if member.isfile():
                        data = t.extractfile(member)
                        while data.read(1 << 20):
                            pass
                end = t.offset
            if path.stat().st_size < end + 2 * tarfile.BLOCKSIZE:
                return "the tar archive ends without its end-of-archive marker: it was cut short"
        else:
            return "it is neither a zip nor a tar archive (cut short, or an error page)"
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        return f"it is truncated or corrupt: {type(err).__name__}: {err}"
    return expect(names) if expect else None


def benchmark_members_problem(names: list[str]) -> str | None:
    """None when the archive's names hold every benchmark set's HR images and their x4 LR."""
    for name, count in BENCHMARK_COUNTS.items():
        hr = [n for n in names if n.startswith(f"{SPLITS[name].hr}/") and n.endswith(".png")]
        lr = [n for n in names if n.startswith(f"{SPLITS[name].lr}/") and n.endswith("x4.png")]
        if len(hr) != count or len(lr) != count:
            return (
                f"it holds {len(hr)} HR and {len(lr)} x4 LR images of {name}, not {count} of each"
            )
    return None


def _top_folder(part: Part) -> str:
    """The folder at the top of the part's archive (what --from-dir may also hold extracted)."""
    provides = Path(part.provides)
    return (provides.relative_to(part.extract_to) if part.extract_to != "." else provides).parts[0]


def _archive_check(part: Part):
    """verify(path) -> None or the problem, for an archive without a published checksum (None when
    the part has one: its MD5 is the check)."""
    if part.md5:
        return None
    if part.provides == "benchmark":
        return lambda path: archive_problem(path, benchmark_members_problem)
    top = _top_folder(part)

    def holds_top(names: list[str]) -> str | None:
        if not any(n.split("/")[0] == top for n in names):
            return f"it holds no {top}/ folder"
        return None

    return lambda path: archive_problem(path, holds_top)


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        p = Path(name)
        if p.is_absolute() or ".." in p.parts:
            raise DownloadError(f"{archive} holds an unsafe path {name!r}; not extracting it")


def extract(archive: Path, dest: Path) -> None:
    """Unpack a .zip or .tar archive into dest (refusing absolute or '..' paths)."""
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            _safe_members(z.namelist(), archive)
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = [m for m in t.getmembers() if m.isfile() or m.isdir()]
            _safe_members([m.name for m in members], archive)
            t.extractall(dest, members=members)
    else:
        raise DownloadError(
            f"{archive} is neither a zip nor a tar archive; delete it and download again"
        )


def verify_benchmark(root: Path) -> list[str]:
    """Problems with the extracted benchmark sets (empty when all is well)."""

    problems = []
    for name, count in BENCHMARK_COUNTS.items():
        hr_dir, lr_dir = root / SPLITS[name].hr, root / SPLITS[name].lr
        hrs = sorted(hr_dir.glob("*.png"))
        if len(hrs) != count:
            problems.append(f"{name}: {len(hrs)} HR images in {hr_dir}, expected {count}")
        for hr_path in hrs:
            lr_path = lr_dir / f"{hr_path.stem}x4.png"
            if not lr_path.exists():
                problems.append(f"{name}: {lr_path.name} is missing")
                continue
            hr, lr = crop_to_multiple(read_image(hr_path), 4), read_image(lr_path)
            if lr.shape[:2] != (hr.shape[0] // 4, hr.shape[1] // 4):
                problems.append(
                    f"{name}: {lr_path.name} is {lr.shape[1]}x{lr.shape[0]}, expected a quarter of {hr.shape[1]}x{hr.shape[0]}"
                )
    return problems


def download(
    root: str | os.PathLike = "data",
    only: list[str] | None = None,
    from_dir: str | os.PathLike | None = None,
    parts: dict[str, Part] | None = None,
    keep_archives: bool = True,
    progress: bool = True,
) -> dict[str, str]:
    """Fetch and unpack the chosen parts (default: all) under `root`. Returns {part: what happened}."""
    parts = PARTS if parts is None else parts
    chosen = list(parts) if not only else only
    unknown = [p for p in chosen if p not in parts]
    if unknown:
        raise DownloadError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(parts)}")
    root = Path(root)
    downloads = root / "downloads"
    report = {}
    for key in chosen:
        part = parts[key]
        dest = root / part.extract_to
        marker = root / "downloads" / f".{part.archive}.extracted"
        if marker.exists() and (root / part.provides).exists():
            report[key] = "already present"
            continue
        if from_dir is not None:
            src_dir = Path(from_dir)
            archive = src_dir / part.archive
            top = _top_folder(part)
            extracted = src_dir / top
            if archive.exists():
                if part.md5 and file_digest(archive) != part.md5:
                    raise DownloadError(
                        f"{archive}: MD5 does not match the published {part.md5}; fetch it again"
                    )
                check = _archive_check(part)
                problem = check(archive) if check else None
                if problem:
                    raise DownloadError(f"{archive} is broken ({problem}); fetch it again")
            elif extracted.is_dir():
                shutil.copytree(extracted, dest / top, dirs_exist_ok=True)
                report[key] = f"copied from {extracted}"
                _finish(root, key, part, marker, None)
                continue
            else:
                raise DownloadError(
                    f"--from-dir {src_dir} holds neither {part.archive} nor an extracted {top}/ folder"
                )
        else:
            archive = fetch(
                part.url,
                downloads / part.archive,
                part.md5,
                progress=progress,
                verify=_archive_check(part),
            )
        extract(archive, dest)
        report[key] = f"extracted {archive.name}"
        _finish(root, key, part, marker, archive)
        if not keep_archives and from_dir is None:
            archive.unlink()
    return report


def _finish(root: Path, key: str, part: Part, marker: Path, archive: Path | None) -> None:
    if not (root / part.provides).exists():
        raise DownloadError(
            f"{key}: after extraction {root / part.provides} does not exist; the archive has another layout"
        )
    if key == "benchmark":
        problems = verify_benchmark(root)
        if problems:
            raise DownloadError("the benchmark package is incomplete:\n  " + "\n  ".join(problems))
        if archive is not None:
            sha = file_digest(archive, "sha256")
            (root / "benchmark" / "SHA256").write_text(f"{sha}  {archive.name}\n")
            print(f"benchmark: contents verified; SHA-256 of {archive.name}: {sha}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
