"""`ganzoo data fetch`: download, resume, safe unpacking and verification.

Every request goes to a real http.server on 127.0.0.1 started by the `server` fixture; no test
contacts any other address (proxies are switched off and the official URL is never used).
"""

from __future__ import annotations

import io
import socket
import tarfile
import time
from pathlib import Path

import pytest
from http_server import FileServer
from PIL import Image

from ganzoo.data import fetch
from ganzoo.data.fetch import DATASET_SPLITS, ArchiveLimits, dataset_url, fetch_dataset
from ganzoo.download import Limits, download
from ganzoo.errors import DataError, GanzooError

# --- tiny archives -------------------------------------------------------------------------------


def _image_bytes(fmt: str, value: int) -> bytes:
    """An 8x4 A|B pair (left half A, right half B) encoded as JPEG or PNG."""
    image = Image.new("RGB", (8, 4), (value, 0, 0))
    image.paste((0, value, 0), (4, 0, 8, 4))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _dataset_files(name: str, splits: tuple[str, ...]) -> dict[str, bytes]:
    """Member path -> content of a small official-looking archive of ``name``."""
    files = {}
    for index, split in enumerate(splits):
        files[f"{name}/{split}/1.jpg"] = _image_bytes("JPEG", 40 + index)
        files[f"{name}/{split}/2.png"] = _image_bytes("PNG", 90 + index)
    return files


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _build_archive(
    files: dict[str, bytes], extra: tuple[tarfile.TarInfo, ...] = (), data: bytes = b""
) -> bytes:
    """A .tar.gz of ``files`` (with their folders), then the ``extra`` members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folders = sorted({str(parent) for path in files for parent in Path(path).parents[:-1]})
        for folder in folders:
            _add_dir(tar, folder)
        for path, content in files.items():
            _add_file(tar, path, content)
        for info in extra:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


FACADES = _dataset_files("facades", DATASET_SPLITS["facades"])
FACADES_ARCHIVE = _build_archive(FACADES)


def _assert_unpacked(root: Path, files: dict[str, bytes]) -> None:
    for path, content in files.items():
        assert (root.parent / path).read_bytes() == content
    with Image.open(root / "train" / "2.png") as image:
        assert image.size == (8, 4)


def _tree(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def _assert_one_line(err: pytest.ExceptionInfo[DataError]) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to 127.0.0.1 must not be sent to a proxy (or anywhere else)."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def server(file_server: FileServer) -> FileServer:
    file_server.files["/facades.tar.gz"] = FACADES_ARCHIVE
    return file_server


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- names ---------------------------------------------------------------------------------------


def test_official_archives_and_their_splits() -> None:
    assert dataset_url("facades") == (
        "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
    )
    assert set(DATASET_SPLITS) == {
        "facades",
        "cityscapes",
        "maps",
        "edges2shoes",
        "edges2handbags",
        "night2day",
    }
    assert DATASET_SPLITS["facades"] == ("train", "val", "test")
    assert DATASET_SPLITS["night2day"] == ("train", "val", "test")
    assert all(splits[0] == "train" and len(splits) >= 2 for splits in DATASET_SPLITS.values())


def test_unknown_name_suggests_the_closest_and_lists_all(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        fetch_dataset("facade", to=tmp_path / "datasets", progress=False)
    message = _assert_one_line(err)
    assert "did you mean 'facades'" in message
    assert all(name in message for name in DATASET_SPLITS)
    assert not (tmp_path / "datasets").exists()


# --- downloading ---------------------------------------------------------------------------------


def test_fetch_over_http(server: FileServer, tmp_path: Path) -> None:
    to = tmp_path / "datasets"
    root = fetch_dataset("facades", to=to, source=server.url("/facades.tar.gz"), progress=False)
    assert root == to / "facades"
    _assert_unpacked(root, FACADES)
    assert _tree(to) == {"facades"} | {str(Path(path).parent) for path in FACADES} | set(FACADES)
    assert server.requests == [("/facades.tar.gz", None)]


def test_interrupted_download_resumes_with_a_range_request(
    server: FileServer, tmp_path: Path
) -> None:
    to = tmp_path / "datasets"
    url = server.url("/facades.tar.gz")
    half = len(FACADES_ARCHIVE) // 2
    server.cut_next_after = half
    with pytest.raises(DataError) as err:
        fetch_dataset("facades", to=to, source=url, progress=False)
    assert "run the same command again to resume" in _assert_one_line(err)
    part = to / "facades.tar.gz.part"
    assert part.read_bytes() == FACADES_ARCHIVE[:half]
    assert not (to / "facades").exists()

    fetch_dataset("facades", to=to, source=url, progress=False)
    assert server.requests[-1] == ("/facades.tar.gz", f"bytes={half}-")
    assert server.statuses == [200, 206]
    _assert_unpacked(to / "facades", FACADES)
    assert not part.exists()


def test_server_without_range_support_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    server.supports_range = False
    to = tmp_path / "datasets"
    to.mkdir()
    stale = b"not a prefix of the archive" * 10
    (to / "facades.tar.gz.part").write_bytes(stale)
    fetch_dataset("facades", to=to, source=server.url("/facades.tar.gz"), progress=False)
    assert server.requests == [("/facades.tar.gz", f"bytes={len(stale)}-")]
    assert server.statuses == [200]
    _assert_unpacked(to / "facades", FACADES)  # the stale bytes were not kept in front


def test_part_longer_than_the_archive_is_discarded(server: FileServer, tmp_path: Path) -> None:
    to = tmp_path / "datasets"
    to.mkdir()
    (to / "facades.tar.gz.part").write_bytes(b"x" * (len(FACADES_ARCHIVE) + 5))
    fetch_dataset("facades", to=to, source=server.url("/facades.tar.gz"), progress=False)
    assert server.statuses == [416, 200]
    assert server.requests[-1] == ("/facades.tar.gz", None)
    _assert_unpacked(to / "facades", FACADES)


def test_unreachable_host_says_what_failed_and_where_to_put_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setattr(fetch, "BASE_URL", f"http://127.0.0.1:{port}/pix2pix/datasets")
    to = tmp_path / "datasets"
    with pytest.raises(DataError) as err:
        fetch_dataset("facades", to=to, progress=False)
    message = _assert_one_line(err)
    assert f"could not reach 127.0.0.1:{port}" in message
    assert "ganzoo data fetch facades --from /path/to/facades.tar.gz" in message
    assert str(to / "facades") in message
    assert list(to.iterdir()) == []


# --- bounds: nothing unbounded, nothing left behind ----------------------------------------------

TIGHT = Limits(max_bytes=256 * 1024, stall_seconds=1.0, stall_bytes=1024, timeout=2.0)


@pytest.mark.parametrize(
    "behaviour, expected",
    [("endless", "passed 262,144 bytes"), ("trickle", "stalled"), ("huge", "announces")],
)
def test_hostile_servers_are_cut_off_in_seconds(
    server: FileServer, tmp_path: Path, behaviour: str, expected: str
) -> None:
    server.behaviour["/facades.tar.gz"] = behaviour
    to = tmp_path / "datasets"
    t0 = time.monotonic()
    with pytest.raises(DataError) as err:
        fetch_dataset(
            "facades",
            to=to,
            source=server.url("/facades.tar.gz"),
            progress=False,
            download_limits=TIGHT,
        )
    assert time.monotonic() - t0 < 10
    assert expected in _assert_one_line(err)
    assert list(to.iterdir()) == []  # no .part, no staging folder


@pytest.mark.parametrize("behaviour", ["endless", "trickle", "mirror"])
def test_a_download_past_its_deadline_is_cut_and_deleted(
    server: FileServer, tmp_path: Path, behaviour: str
) -> None:
    # stall windows and size bounds too loose to fire: only the overall deadline can end these
    server.behaviour["/model.bin"] = behaviour
    limits = Limits(max_bytes=1 << 40, stall_seconds=1e9, stall_bytes=1, min_rate=0, deadline=0.3)
    with pytest.raises(GanzooError) as err:
        download(server.url("/model.bin"), tmp_path / "model.bin", limits, hint="fetch it by hand")
    assert "took longer than its 0.3 s deadline" in _assert_one_line(err)
    assert list(tmp_path.iterdir()) == []  # no .part left


def test_a_mirror_slower_than_the_minimum_rate_is_cut_and_deleted(
    server: FileServer, tmp_path: Path
) -> None:
    # 3 KiB every 0.05 s passes every 1 KiB-per-0.2 s stall window, but not an average rate
    server.behaviour["/model.bin"] = "mirror"
    limits = Limits(max_bytes=1 << 30, stall_seconds=0.2, stall_bytes=1024, min_rate=1 << 30)
    with pytest.raises(GanzooError) as err:
        download(server.url("/model.bin"), tmp_path / "model.bin", limits, hint="by hand")
    assert "too slow" in _assert_one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_the_official_limits_refuse_an_oversized_announcement(
    server: FileServer, tmp_path: Path
) -> None:
    server.behaviour["/facades.tar.gz"] = "huge"  # 1 TB announced: facades is 29 MB
    with pytest.raises(DataError, match="more than the 67,108,864 this file can be"):
        fetch_dataset("facades", to=tmp_path, source=server.url("/facades.tar.gz"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_decompression_bomb_is_refused_before_it_fills_the_disk(tmp_path: Path) -> None:
    # 64 MiB of zeros compress to about 64 KiB: unpacking stops at 4x the archive + 16 MiB
    big = tarfile.TarInfo("facades/train/bomb.jpg")
    big.size = 64 * 1024 * 1024
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.addfile(big, io.BytesIO(bytes(big.size)))
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(buffer.getvalue())
    assert archive.stat().st_size < 1024 * 1024
    to = tmp_path / "datasets"
    to.mkdir()
    t0 = time.monotonic()
    with pytest.raises(DataError) as err:
        fetch_dataset("facades", to=to, source=str(archive), progress=False)
    assert "decompression bomb" in _assert_one_line(err)
    assert time.monotonic() - t0 < 5
    assert list(to.iterdir()) == []


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    files = {f"facades/train/{i}.jpg": b"x" for i in range(30)}
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(_build_archive(files))
    to = tmp_path / "datasets"
    to.mkdir()
    with pytest.raises(DataError, match="more than 10 members"):
        fetch_dataset(
            "facades",
            to=to,
            source=str(archive),
            progress=False,
            limits=ArchiveLimits(1 << 20, 1 << 20, 10),
        )
    assert list(to.iterdir()) == []


def test_to_naming_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        fetch_dataset("facades", to=tmp_path / "file", progress=False)


def test_http_error_is_one_line(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        fetch_dataset("maps", to=tmp_path, source=server.url("/maps.tar.gz"), progress=False)
    message = _assert_one_line(err)
    assert "HTTP 404" in message and "--from /path/to/maps.tar.gz" in message
    assert list(tmp_path.iterdir()) == []


def test_second_fetch_does_nothing(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    to = tmp_path / "datasets"
    url = server.url("/facades.tar.gz")
    root = fetch_dataset("facades", to=to, source=url, progress=False)
    before = {path: path.stat().st_mtime_ns for path in to.rglob("*")}
    capsys.readouterr()

    assert fetch_dataset("facades", to=to, source=url, progress=True) == root
    assert "already present" in capsys.readouterr().err
    assert len(server.requests) == 1
    assert {path: path.stat().st_mtime_ns for path in to.rglob("*")} == before


def test_incomplete_folder_is_left_alone_unless_forced(server: FileServer, tmp_path: Path) -> None:
    to = tmp_path / "datasets"
    (to / "facades" / "train").mkdir(parents=True)
    (to / "facades" / "train" / "mine.jpg").write_bytes(b"keep")
    url = server.url("/facades.tar.gz")
    with pytest.raises(DataError) as err:
        fetch_dataset("facades", to=to, source=url, progress=False)
    message = _assert_one_line(err)
    assert "val/, test/" in message and "--force" in message
    assert server.requests == []
    assert (to / "facades" / "train" / "mine.jpg").read_bytes() == b"keep"

    fetch_dataset("facades", to=to, source=url, progress=False, force=True)
    _assert_unpacked(to / "facades", FACADES)
    assert not (to / "facades" / "train" / "mine.jpg").exists()
    assert [p.name for p in to.iterdir()] == ["facades"]


# --- local archives ------------------------------------------------------------------------------


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_fetch_from_a_local_archive(tmp_path: Path, as_url: bool) -> None:
    archive = tmp_path / "downloads" / "facades.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(FACADES_ARCHIVE)
    source = archive.as_uri() if as_url else str(archive)
    root = fetch_dataset("facades", to=tmp_path / "datasets", source=source, progress=False)
    _assert_unpacked(root, FACADES)
    assert archive.read_bytes() == FACADES_ARCHIVE  # the user's file is kept


def test_missing_local_archive(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        fetch_dataset("facades", to=tmp_path, source=str(tmp_path / "nope.tar.gz"), progress=False)
    assert "no archive at" in _assert_one_line(err)


def test_missing_split_is_an_error(tmp_path: Path) -> None:
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(_build_archive(_dataset_files("facades", ("train",))))
    to = tmp_path / "datasets"
    to.mkdir()
    with pytest.raises(DataError) as err:
        fetch_dataset("facades", to=to, source=str(archive), progress=False)
    message = _assert_one_line(err)
    assert "no images in val/, test/" in message
    assert list(to.iterdir()) == []  # the staging folder is gone, nothing looks finished


def test_corrupt_archive_is_an_error(tmp_path: Path) -> None:
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(FACADES_ARCHIVE[: len(FACADES_ARCHIVE) // 2])
    to = tmp_path / "datasets"
    to.mkdir()
    with pytest.raises(DataError) as err:
        fetch_dataset("facades", to=to, source=str(archive), progress=False)
    assert "not a complete .tar.gz archive" in _assert_one_line(err)
    assert list(to.iterdir()) == []


# --- malicious archives --------------------------------------------------------------------------


def _member(name: str, kind: bytes, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size
    info.mode = 0o644
    return info


def _malicious_members(outside: Path) -> dict[str, tuple[tuple[tarfile.TarInfo, ...], str, str]]:
    """Case -> (members appended after a valid facades tree, the member the error must name,
    the reason it must give)."""
    escape = "facades/train/escape"
    absolute = str(outside / "evil.txt")
    dotdot = "facades/../../outside/evil.txt"
    return {
        "absolute-path": ((_member(absolute, tarfile.REGTYPE, size=4),), absolute, "absolute path"),
        "dotdot": ((_member(dotdot, tarfile.REGTYPE, size=4),), dotdot, "'..'"),
        "symlink-escaping": (
            (
                _member(escape, tarfile.SYMTYPE, linkname="../../../outside"),
                _member(f"{escape}/evil.txt", tarfile.REGTYPE, size=4),
            ),
            escape,
            "symbolic link",
        ),
        "symlink-inside": (
            (_member("facades/train/3.jpg", tarfile.SYMTYPE, linkname="1.jpg"),),
            "facades/train/3.jpg",
            "symbolic link",
        ),
        "hardlink": (
            (_member("facades/train/passwd", tarfile.LNKTYPE, linkname="/etc/passwd"),),
            "facades/train/passwd",
            "hard link",
        ),
        "char-device": (
            (_member("facades/train/tty", tarfile.CHRTYPE),),
            "facades/train/tty",
            "device node",
        ),
        "block-device": (
            (_member("facades/train/sda", tarfile.BLKTYPE),),
            "facades/train/sda",
            "device node",
        ),
        "fifo": ((_member("facades/train/pipe", tarfile.FIFOTYPE),), "facades/train/pipe", "fifo"),
    }


_CASES = list(_malicious_members(Path("/x")))


@pytest.mark.parametrize("case", _CASES)
def test_malicious_archive_is_rejected_and_nothing_escapes(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    members, named, reason = _malicious_members(outside)[case]
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(_build_archive(FACADES, members, data=b"evil"))
    to = tmp_path / "datasets"
    to.mkdir()
    before = _tree(tmp_path)

    with pytest.raises(DataError) as err:
        fetch_dataset("facades", to=to, source=str(archive), progress=False)
    message = _assert_one_line(err)
    assert message.startswith("refusing to unpack facades.tar.gz: member ")
    assert f"member {named!r} " in message and reason in message
    assert _tree(tmp_path) == before  # no target, no staging folder, nothing in outside/
