"""The download cache (artifacts.cache): a version downloaded from a bucket once is
copied from this machine the next time, in any process, and never handed back unchecked.

The bucket is moto's, behind a recording proxy (tests/httpproxy.py), so the tests
count the requests that fetch blob data.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

import artifacts
from artifacts.cache import DownloadCache, parse_size
from artifacts.cli.output import human
from artifacts.hashing import blob_id_of_file
from cas.errors import UsageError
from cas.objects import encode_header
from tests.helpers import tree_of, workspace, write_tree
from tests.httpproxy import FaultProxy
from tests.processes import ROOT, python, wait_ok

pytest.importorskip("s3fs")

BIG = os.urandom(3 << 20)  # loose in the store (blobs/…), past cas.store.LOOSE_THRESHOLD
FILES = {"big.bin": BIG, "small/a.txt": b"alpha\n", "small/b.txt": b"beta\n" * 100}


@pytest.fixture(scope="module")
def logged(moto_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A version of FILES logged to a fresh moto bucket, reached through a proxy that
    records every request; yields (store url, store options, proxy). Logged once for the
    module: the tests only read it (and count the requests they send themselves)."""
    from tests.servers import new_s3_spec

    tmp = tmp_path_factory.mktemp("logged")
    spec = new_s3_spec(moto_server)
    with FaultProxy(moto_server.endpoint_url, lambda request: None) as proxy:
        options = {**spec["options"], "endpoint_url": proxy.endpoint_url}
        with pytest.MonkeyPatch.context() as patch:
            workspace(tmp / "ws", patch)
            patch.setenv("ARTIFACTS_CACHE_DIR", str(tmp / "download-cache"))
            data = write_tree(tmp / "data", FILES)
            with artifacts.init(store=spec["url"], store_options=options) as run:
                artifact = artifacts.Artifact("data", "dataset")
                artifact.add_dir(str(data))
                run.log_artifact(artifact)
        yield spec["url"], options, proxy


@pytest.fixture
def bucket(logged: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``logged``, from a workspace of the test's own (with an empty download cache)."""
    workspace(tmp_path / "ws", monkeypatch)
    return logged


def download(bucket: Any, root: Path, **kwargs: Any) -> list[tuple[str, str]]:
    """Download data:latest in a fresh run (nothing kept in memory from an earlier one);
    returns the GETs it sent, as (path, range)."""
    url, options, proxy = bucket
    start = len(proxy.log)
    with artifacts.init(store=url, store_options=options) as run:
        run.use_artifact("data:latest").download(str(root), **kwargs)
    assert tree_of(root) == FILES
    return [(r.path, r.headers.get("range", "")) for r, _ in proxy.log[start:] if r.method == "GET"]


def blob_gets(gets: list[tuple[str, str]], bucket: Any) -> list[tuple[str, str]]:
    """The GETs that read blob data: a large blob's key, or a span of a pack holding one
    of the small files."""
    url, options, _ = bucket
    with artifacts.init(store=url, store_options=options) as run:
        small = [_blob_id(data) for name, data in FILES.items() if name != "big.bin"]
        located = run.registry.objects.locate_packed(small)
    spans = [(pack, offset, offset + length) for _, pack, offset, length in located]
    found = []
    for path, byte_range in gets:
        if "/blobs/" in path:
            found.append((path, byte_range))
            continue
        for pack, start, end in spans:
            if f"/packs/{pack}.pack" in path:
                m = re.fullmatch(r"bytes=(\d+)-(\d+)", byte_range)
                if m is None or (int(m[1]) < end and int(m[2]) >= start):
                    found.append((path, byte_range))
    return found


def _blob_id(data: bytes) -> bytes:
    return blake3.blake3(encode_header("blob", len(data)) + data).digest()


def cache_entries(cache_dir: Path) -> dict[str, Path]:
    return {p.parent.name + p.name: p for p in cache_dir.glob("??/*") if p.is_file()}


def test_a_second_download_sends_no_get_for_blob_data(
    bucket: Any, tmp_path: Path, download_cache_dir: Path
) -> None:
    first = download(bucket, tmp_path / "one")
    assert blob_gets(first, bucket), "the first download fetched the blobs"
    second = download(bucket, tmp_path / "two")
    assert blob_gets(second, bucket) == []
    entries = cache_entries(download_cache_dir)
    assert len(entries) == len(FILES)
    for name, path in entries.items():
        assert blob_id_of_file(str(path)).hex() == name, "every entry holds its blob's bytes"


@pytest.mark.parametrize("how", ["rewritten", "rewritten, mtime put back", "truncated"])
def test_a_corrupted_cache_entry_is_dropped_and_fetched_again(
    bucket: Any, tmp_path: Path, download_cache_dir: Path, how: str
) -> None:
    download(bucket, tmp_path / "one")
    entry = cache_entries(download_cache_dir)[_blob_id(BIG).hex()]
    st = entry.stat()
    time.sleep(0.2)  # past the margin of the stamp's ctime (artifacts.cache.STAMP_MARGIN_NS)
    with open(entry, "r+b") as f:
        if how == "truncated":
            f.truncate(1000)
        else:
            f.write(b"X" * 10)  # same size, other bytes
    if how == "rewritten, mtime put back":
        os.utime(entry, ns=(st.st_atime_ns, st.st_mtime_ns))
    gets = download(bucket, tmp_path / "two")  # which checks the files are FILES
    assert [p for p, _ in blob_gets(gets, bucket) if "/blobs/" in p], "fetched again"
    assert blob_id_of_file(str(entry)) == _blob_id(BIG), "and cached again, whole"
    assert blob_gets(download(bucket, tmp_path / "three"), bucket) == []


def test_skip_cache_neither_reads_nor_fills_the_cache(
    bucket: Any, tmp_path: Path, download_cache_dir: Path
) -> None:
    gets = download(bucket, tmp_path / "one", skip_cache=True)
    assert cache_entries(download_cache_dir) == {}
    download(bucket, tmp_path / "two")
    gets = download(bucket, tmp_path / "three", skip_cache=True)
    assert [p for p, _ in blob_gets(gets, bucket) if "/blobs/" in p], "fetched, not copied"


def test_the_cache_stays_within_its_size(
    bucket: Any, tmp_path: Path, download_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFACTS_CACHE_MAX_SIZE", str(len(BIG)))  # less than FILES
    download(bucket, tmp_path / "one")
    kept = cache_entries(download_cache_dir).values()
    assert 0 < sum(p.stat().st_size for p in kept) <= len(BIG), "trimmed, oldest first"


def test_a_local_store_has_no_download_cache(ws: Path, download_cache_dir: Path) -> None:
    write_tree(ws / "data", FILES)
    with artifacts.init() as run:
        artifact = artifacts.Artifact("data", "dataset")
        artifact.add_dir(str(ws / "data"))
        run.log_artifact(artifact).download(str(ws / "out"))
    assert tree_of(ws / "out") == FILES
    assert not download_cache_dir.exists()


def test_processes_filling_the_cache_at_once_leave_it_whole(
    bucket: Any, tmp_path: Path, download_cache_dir: Path
) -> None:
    url, options, _ = bucket
    script = (
        "import sys, artifacts\n"
        f"with artifacts.init(store={url!r}, store_options={options!r}) as run:\n"
        "    run.use_artifact('data:latest').download(sys.argv[1])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"out{i}")], env=env)
        for i in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    for i in range(3):
        assert tree_of(tmp_path / f"out{i}") == FILES
    entries = cache_entries(download_cache_dir)
    assert len(entries) == len(FILES)
    for name, path in entries.items():
        assert blob_id_of_file(str(path)).hex() == name
    assert os.listdir(download_cache_dir / "tmp") == [], "no partial file left behind"


# A download that stops itself (SIGSTOP) as it is about to rename a complete temporary
# file of the cache into place: an audit hook on os.replace, in the download's process.
_STOPPING_DOWNLOAD = """
import os, signal, sys, artifacts
temp = os.path.join(os.environ["ARTIFACTS_CACHE_DIR"], "tmp") + os.sep
def stop(event, args):
    if event == "os.rename" and str(args[0]).startswith(temp):
        os.kill(os.getpid(), signal.SIGSTOP)
sys.addaudithook(stop)
with artifacts.init(store=sys.argv[1], store_options=eval(sys.argv[2])) as run:
    run.use_artifact("data:latest").download(sys.argv[3])
"""


def stopped_download(bucket: Any, root: Path) -> subprocess.Popen[str]:
    """A download of data:latest into ``root``, stopped with temporary files of the cache."""
    url, options, _ = bucket
    proc = python("-c", _STOPPING_DOWNLOAD, url, repr(options), str(root), cwd=root.parent)
    deadline = time.monotonic() + 60
    while not stopped(proc):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the download never stopped"
        time.sleep(0.01)
    return proc


def stopped(proc: subprocess.Popen[str]) -> bool:
    return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def test_cleanup_remove_temp_spares_a_running_download_and_removes_a_killed_ones(
    bucket: Any, tmp_path: Path, download_cache_dir: Path
) -> None:
    """Each temporary file of the cache is locked by its writer until it is renamed: one
    still locked is a running download's, and --remove-temp leaves it; one a killed
    download left is unlocked, and removed."""
    cleanup = ("-m", "artifacts", "cache", "cleanup", "--remove-temp", "10GB")
    proc = stopped_download(bucket, tmp_path / "one")
    try:
        temps = os.listdir(download_cache_dir / "tmp")
        assert temps, "stopped with a temporary file written"
        wait_ok(python(*cleanup, cwd=tmp_path))
        assert os.listdir(download_cache_dir / "tmp") == temps
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if stopped(proc):  # as it is at each file it caches
                proc.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        wait_ok(proc)
    finally:
        proc.kill()
    assert tree_of(tmp_path / "one") == FILES
    assert len(cache_entries(download_cache_dir)) == len(FILES)
    assert os.listdir(download_cache_dir / "tmp") == []

    shutil.rmtree(download_cache_dir)
    proc = stopped_download(bucket, tmp_path / "two")
    proc.kill()
    proc.communicate()
    left = sum(p.stat().st_size for p in (download_cache_dir / "tmp").iterdir())
    assert left > 0
    said = wait_ok(python(*cleanup, cwd=tmp_path))
    assert os.listdir(download_cache_dir / "tmp") == []
    assert f"reclaimed {human(left)}" in said


def test_a_cache_dir_set_to_a_directory_of_the_users_spares_the_files_of_its_tmp(
    bucket: Any, tmp_path: Path, download_cache_dir: Path
) -> None:
    """ARTIFACTS_CACHE_DIR=~ by mistake: ~/tmp's files are no temporary files of ours,
    for a download (which removes a killed one's) nor for --remove-temp."""
    notes = download_cache_dir / "tmp" / "notes.txt"
    write_tree(download_cache_dir / "tmp", {"notes.txt": b"mine", "12-3.log": b"mine too"})
    download(bucket, tmp_path / "out")
    wait_ok(python("-m", "artifacts", "cache", "cleanup", "--remove-temp", "10GB", cwd=tmp_path))
    assert sorted(os.listdir(notes.parent)) == ["12-3.log", "notes.txt"]


def test_cleanup_of_a_cache_dir_set_to_the_wrong_place_deletes_nothing_of_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file in a two-letter folder counted as an entry: `cache cleanup 0` with
    ARTIFACTS_CACHE_DIR=~ deleted ~/db/*, ~/go/*; set to a store's objects/, it deleted
    the store's objects."""
    mine = {"db/notes.txt": b"mine", "go/main.go": b"mine", "ab/" + "0" * 61: b"mine"}
    home = write_tree(tmp_path / "home", mine)
    monkeypatch.setenv("ARTIFACTS_CACHE_DIR", str(home))
    wait_ok(python("-m", "artifacts", "cache", "cleanup", "0", cwd=tmp_path))
    assert tree_of(home) == mine

    store = tmp_path / "project" / ".artifacts"
    workspace(tmp_path / "project", monkeypatch)
    with artifacts.init() as run:
        artifact = artifacts.Artifact("data", "dataset")
        artifact.add_dir(str(write_tree(tmp_path / "data", FILES)))
        run.log_artifact(artifact)
    objects = {p: p.read_bytes() for p in (store / "objects").rglob("*") if p.is_file()}
    assert objects
    monkeypatch.setenv("ARTIFACTS_CACHE_DIR", str(store / "objects"))
    cleanup = python("-m", "artifacts", "cache", "cleanup", "0", cwd=tmp_path)
    _, err = cleanup.communicate(timeout=60)
    assert cleanup.returncode == 1
    assert err == (
        f"artifacts: error: the download cache {store / 'objects'} is in the store at "
        f"{store}: set ARTIFACTS_CACHE_DIR to a directory of its own\n"
    )
    assert {p: p.read_bytes() for p in (store / "objects").rglob("*") if p.is_file()} == objects


def test_trim_removes_the_oldest_entries_first(tmp_path: Path) -> None:
    cache = DownloadCache(str(tmp_path / "c"))
    ids = [bytes([i]) * 32 for i in range(3)]
    for age, blob_id in enumerate(ids):
        cache.put_bytes(blob_id, b"x" * 100)
        os.utime(cache.path(blob_id), ns=(10**18 - age * 10**9, 0))  # ids[2] is the oldest
    assert cache.trim(150) == 200
    assert [cache.has(i) for i in ids] == [True, False, False]
    assert cache.trim(0) == 100 and not cache.has(ids[0])


def test_sizes_are_read_as_wandb_reads_them() -> None:
    assert parse_size("10GB") == 10 * 10**9
    assert parse_size("500 MB") == 500 * 10**6
    assert parse_size("1.5GiB") == 3 << 29
    assert parse_size("1024") == 1024
    assert parse_size("0") == 0
    with pytest.raises(UsageError):
        parse_size("ten gigs")


def test_cache_cleanup_trims_to_size_oldest_first(
    download_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from artifacts.cli import main

    cache = DownloadCache(str(download_cache_dir))
    ids = [bytes([i]) * 32 for i in range(3)]
    for age, blob_id in enumerate(ids):
        cache.put_bytes(blob_id, b"x" * 1000)
        os.utime(cache.path(blob_id), ns=(10**18 - age * 10**9, 0))  # ids[2] is the oldest
    os.makedirs(download_cache_dir / "tmp", exist_ok=True)
    (download_cache_dir / "tmp" / "123-0").write_bytes(b"partial")
    assert main(["cache", "cleanup", "1.5KB"]) == 0
    assert "reclaimed 2.0 KiB" in capsys.readouterr().out
    assert [cache.has(i) for i in ids] == [True, False, False]
    assert (download_cache_dir / "tmp" / "123-0").exists(), "kept without --remove-temp"
    assert main(["cache", "cleanup", "--remove-temp", "0"]) == 0
    assert not cache.has(ids[0]) and os.listdir(download_cache_dir / "tmp") == []


def test_cache_cleanup_of_a_size_it_cannot_read_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from artifacts.cli import main

    assert main(["cache", "cleanup", "ten gigs"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a size" in err and "internal" not in err
    # 400 digits of TB: "internal error: OverflowError: cannot convert float infinity".
    assert main(["cache", "cleanup", "9" * 400 + "TB"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than any disk holds" in err


def test_a_size_past_any_disk_is_refused_and_a_fraction_of_a_byte_is_none() -> None:
    """`init --chunks 999…TB` stored a threshold of 9e35 TiB; a size read through a
    float lost its last digits."""
    for size in ("9" * 400 + "TB", "10000000TiB", "9223372036854775808"):
        with pytest.raises(UsageError, match="more than any disk holds"):
            parse_size(size)
    assert parse_size("8388607TiB") == 8388607 << 40
    assert parse_size("123456789012345678") == 123456789012345678
    assert parse_size("0.0000001") == 0


@pytest.mark.parametrize("skip_cache", [False, True])
def test_an_entry_downloads_through_the_cache_unless_told_not_to(
    bucket: Any, tmp_path: Path, download_cache_dir: Path, skip_cache: bool
) -> None:
    url, options, proxy = bucket
    with artifacts.init(store=url, store_options=options) as run:
        entry = run.use_artifact("data:latest").get_entry("big.bin")
        path = entry.download(str(tmp_path / "one"), skip_cache=skip_cache)
    assert Path(path).read_bytes() == BIG
    cached = _blob_id(BIG).hex() in cache_entries(download_cache_dir)
    assert cached is not skip_cache


def test_an_entry_rewritten_with_its_mtime_put_back_is_not_trusted_when_read_at_once(
    tmp_path: Path,
) -> None:
    """Reading an entry whose atime is behind its ctime moves the atime to the present
    (relatime): at once after the rewrite, that looks like a stamp. It must not pass."""
    cache = DownloadCache(str(tmp_path / "c"))
    data = b"payload" * 1000
    blob_id = _blob_id(data)
    cache.put_bytes(blob_id, data)
    entry = cache.path(blob_id)
    st = os.stat(entry)
    time.sleep(0.2)  # past the margin of the stamp's ctime (artifacts.cache.STAMP_MARGIN_NS)
    with open(entry, "r+b") as f:
        f.write(b"X" * 10)
    os.utime(entry, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not cache.copy_to(blob_id, len(data), str(tmp_path / "out")), "dropped"
    assert not os.path.exists(entry)


def _slow_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    """Renames that take 0.2 s, past the stamp's margin: as ext4's do under load, or over
    an older file, whose data it writes back first (0.1-0.4 s for 256 MiB here)."""
    rename = os.replace

    def slow(src: str, dst: str) -> None:
        time.sleep(0.2)
        rename(src, dst)

    monkeypatch.setattr(os, "replace", slow)


def _copied_as_it_is(cache: DownloadCache, blob_id: bytes, data: bytes, dest: Path) -> bool:
    """Copy the entry out; True if it was trusted as it is (not checked and stored again,
    which gives it a new inode)."""
    inode = os.stat(cache.path(blob_id)).st_ino
    assert cache.copy_to(blob_id, len(data), str(dest))
    assert dest.read_bytes() == data
    return os.stat(cache.path(blob_id)).st_ino == inode


def test_an_entry_is_trusted_however_long_its_rename_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DownloadCache(str(tmp_path / "c"))
    data = b"payload" * 1000
    with monkeypatch.context() as patch:
        _slow_rename(patch)
        cache.put_bytes(_blob_id(data), data)
    assert _copied_as_it_is(cache, _blob_id(data), data, tmp_path / "one")


def test_an_entry_checked_and_stored_again_is_trusted_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19: an entry whose stamp was lost must not be hashed and stored again on
    every download from then on."""
    cache = DownloadCache(str(tmp_path / "c"))
    data = b"payload" * 1000
    blob_id = _blob_id(data)
    cache.put_bytes(blob_id, data)
    st = os.stat(cache.path(blob_id))
    os.utime(cache.path(blob_id), ns=(st.st_atime_ns - 10**9, st.st_mtime_ns))  # stamp lost
    with monkeypatch.context() as patch:
        _slow_rename(patch)  # the entry is stored again over the old one
        assert not _copied_as_it_is(cache, blob_id, data, tmp_path / "one"), "checked"
    assert _copied_as_it_is(cache, blob_id, data, tmp_path / "two")
