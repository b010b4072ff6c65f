"""A full disk, made as users meet it: a store, a destination or a remote on a tmpfs just
too small. The command fails in one line naming the place and what to do; with space
freed, every earlier version is whole, nothing is left behind, and the command runs
(docs/reliability.md, "A full disk")."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cas.errors import StorageError
from tests.helpers import tree_of, workspace, write
from tests.test_cli import (
    CLI,
    Result,
    assert_error,
    cli_env,
    log_with_api,
    make_cli,
    make_data,
)
from tests.test_cli_errors import tmpfs

BIG = 3 << 20  # loose, streamed into the store: more than the disk holds


@contextlib.contextmanager
def filled(place: Path, leave: int = 0) -> Iterator[Path]:
    """Fill the filesystem holding ``place`` but for about ``leave`` bytes; the filler
    is deleted on leaving, which frees the space again."""
    filler = place / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):  # ENOSPC: full
        while (room := free(place) - leave) > 0:
            f.write(b"\0" * min(room, 1 << 20))
    try:
        yield filler
    finally:
        filler.unlink()


def free(place: Path) -> int:
    st = os.statvfs(place)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "size=8m") as place:
        yield place


def seed(store: Path, data: Path) -> dict[str, bytes]:
    """dataset:v0 in ``store``, small files only; returns its files."""
    make_data(data)
    log_with_api(store, data, "dataset")
    return tree_of(data)


def assert_whole(cli: CLI, tmp_path: Path, versions: dict[str, dict[str, bytes]]) -> None:
    """fsck is clean, each version downloads byte-exact, and the store's tmp/ is empty."""
    cli("fsck").ok()
    for spec, files in versions.items():
        out = tmp_path / "check" / spec.replace(":", "-")
        cli("download", spec, out).ok()
        assert tree_of(out) == files, spec
        shutil.rmtree(out)


def leftovers(store: Path) -> list[str]:
    return os.listdir(store / "tmp")


@pytest.mark.parametrize("kind", ["small files", "a large file", "a large file as chunks"])
def test_log_into_a_full_store_names_it_and_keeps_every_version(
    disk: Path, tmp_path: Path, kind: str
) -> None:
    store = disk / "store"
    v0 = seed(store, tmp_path / "data")
    if kind == "a large file as chunks":
        chunks = {"when": "always", "threshold": 256 << 10}
        (store / "config.json").write_text(json.dumps({"chunks": chunks}))
    new = tmp_path / "new"
    if kind.startswith("a large file"):
        write(new / "big.bin", os.urandom(BIG))
    else:
        for i in range(200):
            write(new / f"f{i}.txt", os.urandom(3000))
    cli = make_cli(tmp_path, store)
    with filled(disk, leave=64 << 10):
        for name in ("dataset", "fresh"):  # incremental, and a first version
            result = cli("log", new, "--name", name, "--type", "dataset")
            assert_error(result, f"no space left on the device holding the store at {store}")
            assert "free some space" in result.err
        assert leftovers(store) == []
    assert_whole(cli, tmp_path, {"dataset:v0": v0})
    cli("log", new, "--name", "dataset", "--type", "dataset").ok()
    assert_whole(cli, tmp_path, {"dataset:v0": v0, "dataset:v1": tree_of(new)})
    assert (store / "chunked").exists() == kind.endswith("chunks")


@pytest.mark.parametrize(
    "command",
    [
        ("alias", "add", "dataset:v0", "best"),
        ("rm", "dataset:v0"),
        ("gc", "--grace", "0"),
    ],
)
def test_a_command_writing_a_full_store_names_it_and_keeps_every_version(
    disk: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    store = disk / "store"
    v0 = seed(store, tmp_path / "data")
    write(tmp_path / "data" / "train.csv", "a,b\n5,6\n")
    log_with_api(store, tmp_path / "data", "dataset")
    v1 = tree_of(tmp_path / "data")
    cli = make_cli(tmp_path, store)
    refs = {p: p.read_bytes() for p in (store / "refs").rglob("*") if p.is_file()}
    with filled(disk):
        result = cli(*command)
        if result.rc == 0:
            pytest.skip(f"{command} wrote nothing on a full disk")
        assert_error(result, f"no space left on the device holding the store at {store}")
        assert leftovers(store) == []
        for ref, before in refs.items():  # each ref as it was, or gone (rm): never cut
            assert not ref.exists() or ref.read_bytes() == before, ref
    assert_whole(cli, tmp_path, {"dataset:v0": v0, "dataset:v1": v1})
    cli(*command).ok()


@pytest.mark.parametrize("command", ["download", "checkout"])
def test_a_download_into_a_full_disk_names_the_destination(
    disk: Path, tmp_path: Path, command: str
) -> None:
    store = tmp_path / "store"
    data = tmp_path / "data"
    write(data / "big.bin", os.urandom(BIG))
    v0 = seed(store, data)
    cli = make_cli(tmp_path, store)
    out = disk / "out"
    with filled(disk, leave=1 << 20):
        result = cli(command, "dataset:v0", out)
        assert_error(result, f"no space left on the device holding {out}")
        assert "free some space" in result.err
        assert sorted(os.listdir(disk)) == ["filler"]  # no staging left behind
    cli(command, "dataset:v0", out).ok()
    assert tree_of(out) == v0


def versions_in(store: Path, data: Path) -> dict[str, dict[str, bytes]]:
    """dataset:v0 (small files) and v1 (a large file added) in ``store``."""
    v0 = seed(store, data)
    write(data / "big.bin", os.urandom(BIG))
    log_with_api(store, data, "dataset")
    return {"dataset:v0": v0, "dataset:v1": tree_of(data)}


def test_a_clone_onto_a_full_disk_names_it_and_runs_again(disk: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    versions = versions_in(source, tmp_path / "data")
    cli = make_cli(tmp_path, None)
    copy = disk / "copy"
    with filled(disk, leave=1 << 20):
        result = cli("clone", source, copy)
        assert_error(result, "no space left on the device holding the store at")
        assert str(copy) in result.err
        assert leftovers(copy / ".artifacts.partial") == []
    cli("clone", source, copy).ok()  # resumes the clone stopped half-way
    assert_whole(make_cli(tmp_path, copy / ".artifacts"), tmp_path, versions)


def test_a_pull_into_a_full_store_keeps_it_whole(disk: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    versions = versions_in(remote, tmp_path / "data")
    make_cli(tmp_path, None)("clone", remote, disk / "copy").ok()
    store = disk / "copy" / ".artifacts"
    write(tmp_path / "data" / "more.bin", os.urandom(BIG))
    log_with_api(remote, tmp_path / "data", "dataset")
    cli = make_cli(tmp_path, store)
    cli("remote", "add", "origin", remote).ok()
    with filled(disk, leave=1 << 20):
        result = cli("pull", "origin")
        assert_error(result, f"no space left on the device holding the store at {store}")
        assert leftovers(store) == []
    assert_whole(cli, tmp_path, versions)
    cli("pull", "origin").ok()
    versions["dataset:v2"] = tree_of(tmp_path / "data")
    assert_whole(cli, tmp_path, versions)


def test_a_push_to_a_remote_on_a_full_disk_keeps_it_whole(disk: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    versions = versions_in(store, tmp_path / "data")
    cli = make_cli(tmp_path, store)
    remote = disk / "remote"
    cli("remote", "add", "origin", remote).ok()
    cli("push", "origin").ok()
    write(tmp_path / "data" / "more.bin", os.urandom(BIG))
    log_with_api(store, tmp_path / "data", "dataset")
    with filled(disk, leave=1 << 20):
        result = cli("push", "origin")
        assert_error(result, f"no space left on the device holding the store at {remote}")
        assert leftovers(remote) == []
    assert_whole(make_cli(tmp_path, remote), tmp_path, versions)
    cli("push", "origin").ok()
    versions["dataset:v2"] = tree_of(tmp_path / "data")
    assert_whole(make_cli(tmp_path, remote), tmp_path, versions)


@pytest.mark.parametrize("leave", [0, 16 << 10, 64 << 10])
def test_a_gc_that_fills_the_disk_rewriting_a_pack_loses_nothing(
    disk: Path, tmp_path: Path, leave: int
) -> None:
    store = disk / "store"
    data = tmp_path / "data"
    for i in range(100):
        write(data / f"f{i}.txt", os.urandom(2000))
    log_with_api(store, data, "dataset")  # one pack, half of it dropped below
    for i in range(50):
        (data / f"f{i}.txt").unlink()
    log_with_api(store, data, "dataset")
    kept = tree_of(data)
    cli = make_cli(tmp_path, store)
    cli("rm", "dataset:v0").ok()
    with filled(disk, leave=leave):
        result = cli("gc", "--grace", "0")
        if result.rc == 0:
            pytest.skip("gc found room")
        assert_error(result, f"no space left on the device holding the store at {store}")
        assert leftovers(store) == []
    assert_whole(cli, tmp_path, {"dataset:v1": kept})
    cli("gc", "--grace", "0").ok()
    assert_whole(cli, tmp_path, {"dataset:v1": kept})
    assert leftovers(store) == []


def test_config_json_written_on_a_full_disk_is_left_as_it_was(disk: Path, tmp_path: Path) -> None:
    store = disk / "store"
    seed(store, tmp_path / "data")
    cli = make_cli(tmp_path, store)
    cli("remote", "add", "origin", tmp_path / "origin").ok()
    before = (store / "config.json").read_bytes()
    with filled(disk):
        result = cli("remote", "add", "backup", tmp_path / "backup" / ("x" * 200))
        assert_error(result, f"no space left on the device holding the store at {store}")
        assert (store / "config.json").read_bytes() == before
        assert leftovers(store) == []
    assert "origin" in cli("remote", "ls").ok().out


def test_a_repair_on_a_full_disk_names_the_store_and_repairs_once_there_is_room(
    disk: Path, tmp_path: Path
) -> None:
    store = disk / "store"
    versions = versions_in(store, tmp_path / "data")
    cli = make_cli(tmp_path, store)
    cli("remote", "add", "origin", tmp_path / "copy").ok()
    cli("push", "origin").ok()
    big = max((p for p in store.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    damaged = bytearray(big.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    big.write_bytes(bytes(damaged))
    with filled(disk):
        result = cli("fsck", "--repair", "origin")
        assert_error(result, f"no space left on the device holding the store at {store}")
        assert leftovers(store) == []
    cli("fsck", "--repair", "origin").ok()
    assert_whole(cli, tmp_path, versions)


def test_download_by_the_api_into_a_full_disk_leaves_nothing_and_runs_again(
    disk: Path, tmp_path: Path
) -> None:
    import artifacts

    store = tmp_path / "store"
    data = tmp_path / "data"
    write(data / "big.bin", os.urandom(BIG))
    files = seed(store, data)
    api = artifacts.Api(overrides={"entity": "team", "project": "proj", "store": str(store)})
    artifact = api.artifact("team/proj/dataset:v0")
    out = disk / "out"
    with filled(disk, leave=1 << 20):
        with pytest.raises(OSError) as raised:
            artifact.download(root=str(out))
        assert raised.value.errno == errno.ENOSPC
        assert sorted(os.listdir(disk)) == ["filler"]
    assert tree_of(artifact.download(root=str(out))) == files


def test_a_download_cache_on_a_full_disk_does_not_stop_the_download(
    moto_server: Any, disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache only saves a second download's requests: a full disk under it is no
    reason to fail the first."""
    import artifacts
    from tests.servers import new_s3_spec

    spec = new_s3_spec(moto_server)
    workspace(tmp_path / "ws", monkeypatch)
    monkeypatch.setenv("ARTIFACTS_CACHE_DIR", str(disk / "cache"))
    data = tmp_path / "data"
    write(data / "big.bin", os.urandom(BIG))
    files = make_data(data) and tree_of(data)
    with artifacts.init(store=spec["url"], store_options=spec["options"]) as run:
        artifact = artifacts.Artifact("dataset", "dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact)
    cached = disk / "cache"
    with filled(disk, leave=1 << 20):
        with (
            artifacts.init(store=spec["url"], store_options=spec["options"]) as run,
            pytest.warns(UserWarning, match=f"download cache at {cached} is on a full disk"),
        ):
            out = run.use_artifact("dataset:latest").download(str(tmp_path / "out"))
        assert tree_of(out) == files
        assert list((cached / "tmp").iterdir()) == []  # nothing half-made left
    with artifacts.init(store=spec["url"], store_options=spec["options"]) as run:
        out = run.use_artifact("dataset:latest").download(str(tmp_path / "again"))
    assert tree_of(out) == files
    assert sum(p.stat().st_size for p in cached.rglob("*") if p.is_file()) >= BIG


def test_a_bucket_store_is_logged_to_and_read_with_its_local_caches_on_a_full_disk(
    moto_server: Any, disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stat cache (and pack indexes) of a bucket store are kept under
    $XDG_CACHE_HOME: copies and hints, whose disk filling is no reason to fail a log
    or a download."""
    import artifacts
    from tests.servers import new_s3_spec

    spec = new_s3_spec(moto_server)
    workspace(tmp_path / "ws", monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(disk / "xdg"))
    data = tmp_path / "data"
    files = tree_of(make_data(data))
    with filled(disk, leave=0):
        with artifacts.init(store=spec["url"], store_options=spec["options"]) as run:
            artifact = artifacts.Artifact("dataset", "dataset")
            artifact.add_dir(str(data))
            run.log_artifact(artifact)
        with artifacts.init(store=spec["url"], store_options=spec["options"]) as run:
            out = run.use_artifact("dataset:v0").download(str(tmp_path / "out"), skip_cache=True)
        assert tree_of(out) == files
        assert [p for p in (disk / "xdg").rglob("*") if p.is_file()] == []


def test_a_store_out_of_inodes_names_it_and_keeps_its_refs(tmp_path: Path) -> None:
    """No file can be made (the temporary file of a ref, a lock): ENOSPC too."""
    with tmpfs(tmp_path / "disk", "size=8m,nr_inodes=400") as disk:
        store = disk / "store"
        v0 = seed(store, tmp_path / "data")
        cli = make_cli(tmp_path, store)
        refs = {p: p.read_bytes() for p in (store / "refs").rglob("*") if p.is_file()}
        fillers = disk / "fillers"
        fillers.mkdir()
        with contextlib.suppress(OSError):
            for i in range(1000):
                (fillers / str(i)).touch()
        for command in (("alias", "add", "dataset:v0", "best"), ("tag", "add", "dataset:v0", "t")):
            result = cli(*command)
            assert_error(result, f"no space left on the device holding the store at {store}")
        assert {p: p.read_bytes() for p in refs} == refs
        assert leftovers(store) == []
        shutil.rmtree(fillers)
        cli("alias", "add", "dataset:v0", "best").ok()
        assert_whole(cli, tmp_path, {"dataset:v0": v0, "dataset:best": v0})


@pytest.mark.parametrize(
    "command",
    [
        ("init", "--store", "{disk}/new"),
        ("--store", "{disk}/new", "log", "data", "-n", "x"),
        ("clone", "{source}", "{disk}/new"),
    ],
)
def test_a_store_made_on_a_full_disk_names_it(tmp_path: Path, command: tuple[str, ...]) -> None:
    seed(tmp_path / "source", tmp_path / "data")
    with tmpfs(tmp_path / "disk", "size=1m,nr_inodes=20") as disk:
        with contextlib.suppress(OSError):
            for i in range(100):
                (disk / str(i)).touch()
        places = {"disk": disk, "source": tmp_path / "source"}
        result = make_cli(tmp_path, None)(*(part.format(**places) for part in command))
        assert_error(result, f"no space left on the device holding the store at {disk / 'new'}")


def test_a_store_without_its_tmp_on_a_full_disk_is_read(tmp_path: Path) -> None:
    """Copied without tmp/ (rsync --exclude tmp): opening it made tmp/ first."""
    seed(tmp_path / "store", tmp_path / "data")
    with tmpfs(tmp_path / "disk", "size=1m,nr_inodes=100") as disk:
        store = disk / "store"
        shutil.copytree(tmp_path / "store", store, ignore=shutil.ignore_patterns("tmp"))
        with contextlib.suppress(OSError):
            for i in range(100):
                (disk / str(i)).touch()
        cli = make_cli(tmp_path, store)
        assert "dataset" in cli("ls").ok().out
        assert_error(cli("alias", "add", "dataset:v0", "best"), "no space left on the device")


def test_a_checkout_stopped_by_a_full_disk_is_finished_by_the_next(
    disk: Path, tmp_path: Path
) -> None:
    """As a killed one (docs/reliability.md): each file in the directory is the one
    version's or the other's, whole, and no temporary file is left."""
    store = tmp_path / "store"
    data = tmp_path / "data"
    v0 = seed(store, data)
    write(data / "train.csv", "a,b\n7,8\n")
    write(data / "big.bin", os.urandom(BIG))
    log_with_api(store, data, "dataset")
    cli = make_cli(tmp_path, store)
    out = disk / "out"
    cli("checkout", "dataset:v0", out).ok()
    with filled(disk, leave=1 << 20):
        assert_error(
            cli("checkout", "dataset:v1", out), f"no space left on the device holding {out}"
        )
        v1 = tree_of(data)
        for name, content in tree_of(out).items():
            assert content in (v0.get(name), v1.get(name)), name
        assert sorted(os.listdir(disk)) == ["filler", "out"]
    cli("checkout", "dataset:v1", out).ok()
    assert tree_of(out) == tree_of(data)


@pytest.mark.parametrize("command", ["cat-object", "show"])
def test_output_redirected_to_a_full_disk_is_named(
    disk: Path, tmp_path: Path, command: str
) -> None:
    store = tmp_path / "store"
    data = tmp_path / "data"
    for i in range(300):
        write(data / f"file-{i:04}.txt", f"{i}\n")
    write(data / "big.bin", os.urandom(BIG))
    log_with_api(store, data, "dataset")
    cli = make_cli(tmp_path, store)
    blob = next(
        f["digest"]
        for f in json.loads(cli("show", "dataset:v0", "--json").ok().out)["files"]
        if f["path"] == "big.bin"
    )
    args = {"cat-object": ("cat-object", blob), "show": ("show", "dataset:v0", "--json")}[command]
    with filled(disk), open(disk / "out", "wb") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "artifacts", *args],
            cwd=tmp_path,
            env=cli_env(store),
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert_error(
        Result(proc.returncode, "", proc.stderr),
        "no space left on the device the standard output goes to",
    )


def test_cat_object_of_a_large_blob_with_tmpdir_on_a_full_disk_names_it(
    disk: Path, tmp_path: Path
) -> None:
    """Over 64 MiB, cat-object holds a blob in $TMPDIR until it is verified: a full one
    ended the command with a bare "[Errno 28] No space left on device"."""
    store = tmp_path / "store"
    data = tmp_path / "data"
    write(data / "huge.bin", os.urandom(65 << 20))
    log_with_api(store, data, "dataset")
    cli = make_cli(tmp_path, store)
    blob = json.loads(cli("show", "dataset:v0", "--json").ok().out)["files"][0]["digest"]
    proc = subprocess.run(
        [sys.executable, "-m", "artifacts", "cat-object", blob],
        cwd=tmp_path,
        env=cli_env(store, TMPDIR=str(disk)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert_error(
        Result(proc.returncode, "", proc.stderr), f"no space left on the device holding {disk}"
    )
    assert "set TMPDIR to a directory with room" in proc.stderr
    assert os.listdir(disk) == []  # the spool is gone with the command


@pytest.mark.parametrize("kind", ["small files", "a large file"])
def test_a_run_whose_log_filled_the_disk_raises_the_log_error_and_ends_once_there_is_room(
    disk: Path, tmp_path: Path, kind: str
) -> None:
    """Leaving the with-block wrote the run's end on the same full disk: its error, not
    the log's, came out of the block."""
    import artifacts

    store = disk / "store"
    v0 = seed(store, tmp_path / "data")
    new = tmp_path / "new"
    if kind == "a large file":
        write(new / "big.bin", os.urandom(BIG))
    else:
        for i in range(200):
            write(new / f"f{i}.txt", os.urandom(3000))
    run = artifacts.init(entity="team", project="proj", store=str(store), id="filled")
    with filled(disk):
        with (
            pytest.raises(StorageError, match="no space left on the device") as raised,
            pytest.warns(UserWarning, match="run filled could not be marked ended"),
            run,
        ):
            run.log_artifact(str(new), name="dataset", type="dataset")
        assert any(entry.name == "log_artifact" for entry in raised.traceback), raised.traceback
        assert leftovers(store) == []
        assert artifacts.current_run() is None  # the block is over
    run.finish()  # with room again, the run's record is ended
    api = artifacts.Api(overrides={"entity": "team", "project": "proj", "store": str(store)})
    assert api.run("team/proj/filled").state == "failed"
    assert_whole(make_cli(tmp_path, store), tmp_path, {"dataset:v0": v0})


def test_a_log_to_a_bucket_with_tmpdir_on_a_full_disk(
    moto_server: Any, disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    import artifacts
    from tests.servers import new_s3_spec

    spec = new_s3_spec(moto_server)
    workspace(tmp_path / "ws", monkeypatch)
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    data = tmp_path / "data"
    write(data / "big.bin", os.urandom(BIG))
    files = tree_of(make_data(data))
    run = artifacts.init(store=spec["url"], store_options=spec["options"])
    artifact = artifacts.Artifact("dataset", "dataset")
    artifact.add_dir(str(data))
    with filled(disk, leave=1 << 20):
        with pytest.raises(StorageError) as raised:
            run.log_artifact(artifact)
        assert f"no space left on the device holding {disk}, where files bound for" in str(
            raised.value
        )
        assert "set TMPDIR to a directory with room" in str(raised.value)
        assert sorted(os.listdir(disk)) == ["filler"]
    run.log_artifact(artifact)
    out = run.use_artifact("dataset:v0").download(str(tmp_path / "out"))
    assert tree_of(out) == files
    run.finish()


def test_a_store_on_a_full_disk_is_still_read(disk: Path, tmp_path: Path) -> None:
    store = disk / "store"
    versions = versions_in(store, tmp_path / "data")
    cli = make_cli(tmp_path, store)
    with filled(disk):
        for command in (("ls",), ("versions", "dataset"), ("show", "dataset:v1")):
            cli(*command).ok()
        assert_whole(cli, tmp_path, versions)
