"""``artifacts://`` through fsspec and pandas."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest

import artifacts
from artifacts.fs import ArtifactsFileSystem, ReadOnlyError
from cas.errors import CorruptObjectError

ROOT = Path(__file__).resolve().parent.parent
BIG = 2 * (1 << 20) + 3  # above the store's loose threshold: stored loose, streamed


@pytest.fixture
def store(tmp_path: Path) -> str:
    """e/p/dataset v0 (train.csv, sub/notes.txt, big.bin) and v1 (train.csv changed, alias best)."""
    url = str(tmp_path / "store")
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (data / "sub" / "notes.txt").write_text("hello\n")
    (data / "big.bin").write_bytes(bytes(range(256)) * (BIG // 256) + b"end")
    with artifacts.init(entity="e", project="p", store=url) as run:
        first = artifacts.Artifact("dataset", "dataset")
        first.add_dir(str(data))
        run.log_artifact(first)
        (data / "train.csv").write_text("x,y\n5,6\n")
        second = artifacts.Artifact("dataset", "dataset")
        second.add_dir(str(data))
        run.log_artifact(second, aliases=["best"])
    return url


@pytest.fixture
def fs(store: str) -> ArtifactsFileSystem:
    return fsspec.filesystem("artifacts", store=store)


def test_pandas_reads_a_version(store: str) -> None:
    import pandas

    df = pandas.read_csv("artifacts://e/p/dataset:v0/train.csv", storage_options={"store": store})
    assert df.to_dict("list") == {"x": [1, 3], "y": [2, 4]}
    latest = pandas.read_csv("artifacts://e/p/dataset/train.csv", storage_options={"store": store})
    assert latest.to_dict("list") == {"x": [5], "y": [6]}


def test_fsspec_open_text_binary_and_large(store: str) -> None:
    with fsspec.open("artifacts://e/p/dataset:best/train.csv", "r", store=store) as f:
        assert f.read() == "x,y\n5,6\n"
    with fsspec.open("artifacts://e/p/dataset:v0/sub/notes.txt", "rb", store=store) as f:
        assert f.read() == b"hello\n"
    with fsspec.open("artifacts://e/p/dataset:v1/big.bin", "rb", store=store) as f:
        data = f.read()
    assert len(data) == BIG and data.endswith(b"end") and data[:3] == b"\0\1\2"


def test_ls_and_info(fs: ArtifactsFileSystem) -> None:
    assert fs.ls("", detail=False) == ["e"]
    assert fs.ls("artifacts://e", detail=False) == ["e/p"]
    [artifact] = fs.ls("e/p")
    assert artifact["name"] == "e/p/dataset" and artifact["version"] == "v1"
    assert artifact["type"] == "directory"
    assert fs.ls("artifacts://e/p/dataset:v0/", detail=False) == [
        "e/p/dataset:v0/big.bin",
        "e/p/dataset:v0/sub",
        "e/p/dataset:v0/train.csv",
    ]
    assert fs.ls("e/p/dataset:v0/sub", detail=False) == ["e/p/dataset:v0/sub/notes.txt"]
    info = fs.info("e/p/dataset:v0/train.csv")
    assert info["type"] == "file" and info["size"] == 12 and len(info["id"]) == 64
    assert fs.info("e/p/dataset:v0/sub")["type"] == "directory"
    root = fs.info("e/p/dataset:best")
    assert root["type"] == "directory" and root["version"] == "v1"
    assert fs.isdir("e/p") and fs.isfile("e/p/dataset/sub/notes.txt")
    assert fs.size("e/p/dataset:v1/big.bin") == BIG
    assert sorted(fs.find("e/p/dataset:v0")) == [
        "e/p/dataset:v0/big.bin",
        "e/p/dataset:v0/sub/notes.txt",
        "e/p/dataset:v0/train.csv",
    ]
    assert fs.glob("e/p/dataset:v0/*.csv") == ["e/p/dataset:v0/train.csv"]
    # Same content, same id, in both versions.
    assert fs.ukey("e/p/dataset:v0/big.bin") == fs.ukey("e/p/dataset:v1/big.bin")
    for missing in ("e/p/dataset:v7", "e/p/dataset:v0/nope.csv", "e/p/other", "x", "e/q"):
        assert not fs.exists(missing)
        with pytest.raises(FileNotFoundError):
            fs.info(missing)
    with pytest.raises(FileNotFoundError):
        fs.ls("e/p/dataset:v0/nope")
    with pytest.raises(IsADirectoryError):
        fs.cat_file("e/p/dataset:v0/sub")


def test_cat_file_and_ranges(fs: ArtifactsFileSystem) -> None:
    assert fs.cat_file("e/p/dataset:v0/train.csv") == b"x,y\n1,2\n3,4\n"
    assert fs.cat_file("e/p/dataset:v0/train.csv", start=4, end=7) == b"1,2"
    assert fs.cat_file("e/p/dataset:v0/big.bin", start=-3) == b"end"
    assert fs.cat("artifacts://e/p/dataset:v0/sub/notes.txt") == b"hello\n"


def test_writes_are_refused(fs: ArtifactsFileSystem) -> None:
    with pytest.raises(ReadOnlyError, match="read-only"):
        fs.open("e/p/dataset:v0/new.csv", "wb")
    with pytest.raises(PermissionError):
        fs.pipe_file("e/p/dataset:v0/new.csv", b"x")
    with pytest.raises(ReadOnlyError):
        fs.rm("e/p/dataset:v0/train.csv")
    with pytest.raises(ReadOnlyError):
        fs.mkdir("e/p/dataset:v0/d")
    assert fs.cat_file("e/p/dataset:v0/train.csv")  # untouched


def _corrupt(path: Path, needle: bytes | None = None, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    where = data.index(needle) if needle else at
    data[where] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_corrupt_blobs_raise(fs: ArtifactsFileSystem, store: str) -> None:
    big_id = fs.info("e/p/dataset:v0/big.bin")["id"]
    _corrupt(Path(store) / "blobs" / big_id[:2] / big_id[2:])  # a large blob's content
    with pytest.raises(CorruptObjectError):
        fs.open("e/p/dataset:v0/big.bin").read()
    with pytest.raises(CorruptObjectError):
        fs.cat_file("e/p/dataset:v0/big.bin")
    # A small file lives in a pack: damage its bytes there.
    [pack] = [p for p in (Path(store) / "packs").glob("*.pack") if b"hello\n" in p.read_bytes()]
    _corrupt(pack, b"hello\n")
    with pytest.raises(CorruptObjectError):
        with fsspec.open("artifacts://e/p/dataset:v0/sub/notes.txt", "r", store=store) as f:
            f.read()
    import pandas

    other = next(p for p in (Path(store) / "packs").glob("*.pack") if b"x,y\n1,2" in p.read_bytes())
    _corrupt(other, b"x,y\n1,2")
    with pytest.raises(CorruptObjectError):
        pandas.read_csv("artifacts://e/p/dataset:v0/train.csv", storage_options={"store": store})


def test_store_from_environment_and_missing_store(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As Api(): the environment names the store when this process started no run.
    monkeypatch.setattr("artifacts.lineage._last_store", None)
    monkeypatch.setenv("ARTIFACTS_STORE", store)
    assert fsspec.filesystem("artifacts").cat_file("e/p/dataset:v0/sub/notes.txt") == b"hello\n"
    monkeypatch.setenv("ARTIFACTS_STORE", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError):
        fsspec.filesystem("artifacts")  # a new store, not the cached instance of the old one
    assert not (tmp_path / "nowhere").exists()


def test_registered_through_the_entry_point(store: str) -> None:
    # A fresh interpreter that never imports artifacts.fs itself.
    code = (
        "import fsspec, sys\n"
        "with fsspec.open(sys.argv[1], 'rb', store=sys.argv[2]) as f:\n"
        "    print(type(f).__module__, f.read().decode().strip())\n"
        "print(fsspec.get_filesystem_class('artifacts').__module__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url = "artifacts://e/p/dataset:v0/sub/notes.txt"
    proc = subprocess.run(
        [sys.executable, "-c", code, url, store],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "artifacts.fs"


def _run_docs_example(tmp_path: Path, section: str) -> None:
    """The first python block of docs/fsspec.md after ``section`` runs and prints the
    text block that follows it."""
    text = (ROOT / "docs" / "fsspec.md").read_text().split(section, 1)[1]
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    shown = text.split("```text\n", 1)[1].split("```", 1)[0]
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown


def test_open_gives_a_read_only_fsspec_file(fs: ArtifactsFileSystem, store: str) -> None:
    big = "e/p/dataset:v0/big.bin"
    expected = bytes(range(256)) * (BIG // 256) + b"end"
    with fs.open(big) as f:
        assert f.size == BIG and f.readable() and f.seekable() and not f.writable()
        with pytest.raises(ValueError):
            f.write(b"x")
        f.seek(1000)
        assert f.read(5) == expected[1000:1005]
    assert fs.read_block(big, 300, 10) == expected[300:310]
    with fs.open("e/p/dataset:v0/sub/notes.txt") as f:
        assert f.size == 6 and not f.writable() and f.read() == b"hello\n"
    url = "blockcache::artifacts://e/p/dataset:v0/big.bin"
    with fsspec.open(url, "rb", artifacts={"store": store}) as f:
        f.seek(BIG - 3)
        assert f.read() == b"end"


def _count_gets(storage: Any) -> list[tuple[str, int]]:
    """(key, bytes returned) of every read of a large blob from ``storage`` (-1: a stream
    opened, whose reads are counted as they come)."""
    reads: list[tuple[str, int]] = []
    get, open_stream = storage.get, storage.open

    def counted_get(key: str, start: int | None = None, end: int | None = None) -> bytes:
        data = get(key, start, end)
        if key.startswith("blobs/"):
            reads.append((key, len(data)))
        return data

    def counted_open(key: str) -> Any:
        if key.startswith("blobs/"):
            reads.append((key, -1))
        return open_stream(key)

    storage.get, storage.open = counted_get, counted_open
    return reads


def test_range_reads_fetch_only_the_bytes_asked_for(
    moto_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.servers import new_s3_spec
    from tests.test_remotes import use_s3_env

    use_s3_env(monkeypatch, moto_server.endpoint_url, moto_server.key, moto_server.secret)
    url = new_s3_spec(moto_server)["url"]
    size = 3 << 20
    blob = os.urandom(size)
    (tmp_path / "big.bin").write_bytes(blob)
    with artifacts.init(entity="e", project="p", store=url) as run:
        model = artifacts.Artifact("model", "model")
        model.add_file(str(tmp_path / "big.bin"))
        run.log_artifact(model)
    fs = ArtifactsFileSystem(store=url)
    reads = _count_gets(fs.registry.objects.storage)
    with fs.open("e/p/model:v0/big.bin") as f:
        assert f.read(4) == blob[:4]
    [(_, got)] = reads
    assert 4 <= got <= (1 << 20) + 4  # one read, of at most a block past what was asked
    reads.clear()
    assert fs.cat_file("e/p/model:v0/big.bin", start=size - 10, end=size - 6) == blob[-10:-6]
    assert fs.read_block("e/p/model:v0/big.bin", 2 << 20, 100) == blob[2 << 20 : (2 << 20) + 100]
    assert [got for _, got in reads][0] == 4 and reads[1][1] <= 100 + (1 << 20)
    reads.clear()
    assert fs.cat_file("e/p/model:v0/big.bin") == blob  # whole: one read, verified
    assert [got for _, got in reads] == [size]


def test_a_large_file_read_to_its_end_is_verified(fs: ArtifactsFileSystem, store: str) -> None:
    big_id = fs.info("e/p/dataset:v0/big.bin")["id"]
    _corrupt(Path(store) / "blobs" / big_id[:2] / big_id[2:], at=BIG - 2)
    with fs.open("e/p/dataset:v0/big.bin", block_size=1 << 16) as f:
        assert f.read(10) == b"\0\1\2\3\4\5\6\7\x08\x09"  # a range: cannot be checked
        with pytest.raises(CorruptObjectError):
            while f.read(100_000):  # in order to the end: checked before the end is handed out
                pass
    # Shortened: the missing end is corruption, not an early end of file.
    blob = Path(store) / "blobs" / big_id[:2] / big_id[2:]
    blob.write_bytes(blob.read_bytes()[: BIG - 100])
    with pytest.raises(CorruptObjectError):
        fs.cat_file("e/p/dataset:v0/big.bin", start=BIG - 50)


def test_info_names_the_content_and_the_version_time(fs: ArtifactsFileSystem) -> None:
    old, new = fs.info("e/p/dataset:v0/train.csv"), fs.info("e/p/dataset:latest/train.csv")
    assert old["ETag"] == old["id"] != new["ETag"] == new["id"]
    assert fs.info("e/p/dataset:v0/big.bin")["ETag"] == fs.info("e/p/dataset:v1/big.bin")["ETag"]
    v0, v1 = fs.info("e/p/dataset:v0"), fs.info("e/p/dataset:v1")
    assert v0["ETag"] == v0["id"] != v1["ETag"]
    assert 0 < v0["created"] == v0["mtime"] <= v1["mtime"] < time.time() + 1  # seconds
    assert old["mtime"] == old["created"] == v0["mtime"] and new["mtime"] == v1["mtime"]
    when = fs.modified("e/p/dataset:v0/train.csv")
    assert when == fs.created("e/p/dataset:v0/train.csv")
    assert when.timestamp() == pytest.approx(v0["mtime"]) and when.tzinfo is not None


def test_hf_datasets_sees_a_new_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    """datasets fingerprints remote files by their ETag, and with ``use_etag`` keys its
    download cache by it too: a new version under the same URL (``:latest``, an
    alias) must not give back the rows of the old one."""
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    import datasets  # a test dependency (pyproject.toml)

    url = "artifacts://e/p/table:latest/rows.csv"

    def log(rows: str) -> list[dict[str, Any]]:
        (tmp_path / "rows.csv").write_text(rows)
        with artifacts.init(entity="e", project="p", store=store) as run:
            table = artifacts.Artifact("table", "dataset")
            table.add_file(str(tmp_path / "rows.csv"))
            run.log_artifact(table)
        loaded = datasets.load_dataset(
            "csv",
            data_files=url,
            storage_options={"store": store},
            cache_dir=str(tmp_path / "hf-cache"),
            download_config=datasets.DownloadConfig(
                use_etag=True, storage_options={"store": store}
            ),
            split="train",
        )
        return loaded.to_list()

    assert log("a,b\n1,2\n") == [{"a": 1, "b": 2}]
    assert log("a,b\n3,4\n5,6\n") == [{"a": 3, "b": 4}, {"a": 5, "b": 6}]


def test_globs_expand_entities_projects_artifacts_and_versions(fs: ArtifactsFileSystem) -> None:
    assert fs.glob("e/*/dataset:v0/train.csv") == ["e/p/dataset:v0/train.csv"]
    assert fs.glob("*/p/dataset:v0/sub/*") == ["e/p/dataset:v0/sub/notes.txt"]
    assert fs.glob("e/p/dataset:v*/train.csv") == [
        "e/p/dataset:v0/train.csv",
        "e/p/dataset:v1/train.csv",
    ]
    assert fs.glob("artifacts://e/p/data*:v?/*.csv") == [
        "e/p/dataset:v0/train.csv",
        "e/p/dataset:v1/train.csv",
    ]
    assert fs.glob("e/p/dataset:*") == [
        "e/p/dataset:best",
        "e/p/dataset:latest",
        "e/p/dataset:v0",
        "e/p/dataset:v1",
    ]
    assert fs.glob("e/p/*") == ["e/p/dataset"]  # without a ':', artifacts (their latest)
    assert fs.glob("e/p/*/train.csv") == ["e/p/dataset/train.csv"]
    assert fs.glob("x/*/dataset:v0/train.csv") == []
    assert fs.glob("e/p/dataset:v9*/train.csv") == []
    found = fs.glob("e/*/dataset:v1/*.csv", detail=True)
    assert list(found) == ["e/p/dataset:v1/train.csv"] and found["e/p/dataset:v1/train.csv"]["size"]


def test_a_path_under_a_file_is_not_a_directory(fs: ArtifactsFileSystem) -> None:
    assert fs.ls("e/p/dataset:v0/train.csv", detail=False) == ["e/p/dataset:v0/train.csv"]
    for call in (fs.ls, fs.info):
        with pytest.raises(NotADirectoryError):
            call("e/p/dataset:v0/train.csv/x")
        with pytest.raises(NotADirectoryError):
            call("e/p/dataset:v0/sub/notes.txt/x/y")
    assert not fs.exists("e/p/dataset:v0/train.csv/x")


def test_docs_example(tmp_path: Path) -> None:
    _run_docs_example(tmp_path, "## Example")


def test_polars_docs_example(tmp_path: Path, store: str) -> None:
    """What docs/fsspec.md says of polars: its three ways work, a plain path does not."""
    import polars

    _run_docs_example(tmp_path, "## polars")
    for read in (polars.read_csv, polars.read_parquet):
        with pytest.raises(FileNotFoundError):  # if this starts to work, say so in the docs
            read("artifacts://e/p/dataset:v0/train.csv", storage_options={"store": store})


def test_a_range_that_ends_before_it_starts_is_empty(fs: ArtifactsFileSystem) -> None:
    """As a slice (and fsspec's memory and HTTP filesystems): no bytes, not the rest of
    the file from ``start`` on."""
    for path in ("e/p/dataset:v0/big.bin", "e/p/dataset:v0/train.csv"):
        assert fs.cat_file(path, start=100, end=10) == b""
        assert fs.cat_file(path, start=-5, end=-10) == b""
        assert fs.cat_file(path, start=5, end=5) == b""
        assert fs.cat_file(path, start=-2, end=5) == b""  # -2 is past 5 in either file
    assert fs.cat_file("e/p/dataset:v0/train.csv", start=4, end=-5) == b"1,2"


def test_a_reference_gives_its_logged_bytes_or_raises(tmp_path: Path, store: str) -> None:
    """As a download does: a referenced object changed since it was logged is an error,
    not its new bytes under the version's name."""
    from cas.errors import ReferenceChangedError

    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"logged")
    with artifacts.init(entity="e", project="p", store=store) as run:
        refs = artifacts.Artifact("refs", "dataset")
        refs.add_reference(f"file://{outside}", name="outside.txt")
        run.log_artifact(refs)
    fs = ArtifactsFileSystem(store=store)
    path = "e/p/refs:v0/outside.txt"
    assert fs.cat_file(path) == b"logged" and fs.cat_file(path, start=1, end=3) == b"og"
    with fs.open(path) as f:
        f.seek(2)
        assert f.read() == b"gged"
    outside.write_bytes(b"LOGGED")  # the same size, other bytes
    for read in (lambda: fs.cat_file(path), lambda: fs.open(path).read(), lambda: fs.head(path, 2)):
        with pytest.raises(ReferenceChangedError):
            read()
    outside.unlink()
    with pytest.raises(ReferenceChangedError):
        fs.cat_file(path)


def test_a_walk_of_an_alias_lists_one_version(fs: ArtifactsFileSystem, tmp_path: Path) -> None:
    """:latest and aliases are resolved once per walk (find, glob, du, get): a version
    logged while a walk goes on does not mix its directories into the listing."""
    walk = fs.walk("e/p/dataset:latest")
    assert next(walk) == ("e/p/dataset:latest", ["sub"], ["big.bin", "train.csv"])
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "sub").mkdir()
    (tmp_path / "new" / "sub" / "other.txt").write_text("new\n")
    with artifacts.init(entity="e", project="p", store=fs.store_url) as run:
        newer = artifacts.Artifact("dataset", "dataset")
        newer.add_dir(str(tmp_path / "new"))
        run.log_artifact(newer)
    assert list(walk) == [("e/p/dataset:latest/sub", [], ["notes.txt"])]  # of v1, as the root
    assert fs.find("e/p/dataset:latest") == ["e/p/dataset:latest/sub/other.txt"]  # v2 now
    walked = list(fs.walk("e/p/dataset:v0/sub/notes.txt", detail=True))
    assert [(root, dirs) for root, dirs, _ in walked] == [("e/p/dataset:v0/sub/notes.txt", {})]
    assert walked[0][2][""]["size"] == 6  # a file walks as itself, as fsspec's walk has it
