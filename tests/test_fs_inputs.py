"""Unusual and hostile local files met by ``log``, ``add_dir``/``add_file``/``add_reference``,
``log_artifact``, ``download``, ``checkout``, ``verify`` and ``artifacts://``: names no
version can hold or no terminal should show as they are, paths that are no UTF-8 or too
long, special, unreadable and read-only files, stats past 64 bits, files written to while
read, what stands in a download's way (files, directories, stores, a repository's .git,
links). Each either works or fails with one line saying what to do, never stores what it
did not read, and never writes outside its root. Test names state the behaviour."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest

import artifacts
from artifacts import Artifact, LocalPathError, UsageError, scan
from cas import CorruptObjectError, Repository, forking
from cas.repo import MIN_CHUNKED
from tests.helpers import contents, tree_of, workspace, write
from tests.processes import python, wait_ok
from tests.test_cli import CLI, Result, assert_error, cli_env, make_cli

pytestmark = pytest.mark.timeout(60)

BAD = os.fsdecode(b"bad\xffname")  # a name that is no UTF-8: as Python lists it


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return workspace(tmp_path / "work", monkeypatch)


@pytest.fixture
def cli(ws: Path) -> CLI:
    return make_cli(ws, ws / ".artifacts")


@pytest.fixture
def unprivileged_python() -> list[str]:
    """The command running Python as this user without the power to ignore file modes:
    as root, under setpriv without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (a mode 000
    file is then unreadable to it too)."""
    if os.geteuid() != 0:
        return [sys.executable]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and no setpriv to drop the power to ignore modes")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable]


@pytest.fixture
def unprivileged_cli(ws: Path, unprivileged_python: list[str]) -> CLI:
    """The CLI, run by :func:`unprivileged_python`."""
    env = cli_env(ws / ".artifacts")

    def cli(*args: str | Path) -> Result:
        argv = [*unprivileged_python, "-m", "artifacts", *map(str, args)]
        done = subprocess.run(argv, cwd=ws, env=env, capture_output=True, text=True, timeout=60)
        return Result(done.returncode, done.stdout, done.stderr)

    return cli


# ---- names no version can hold --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [(BAD, "bad\\xffname"), ("a\\b", "a\\b"), (".ARTIFACTS", ".ARTIFACTS")],
)
def test_a_directory_holding_a_name_no_version_can_hold_is_refused_naming_it(
    ws: Path, cli: CLI, name: str, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(ws / "d" / "good", b"good")
    write(ws / "d" / "sub" / name, b"hi")
    write(ws / "d" / "other" / "fine", b"fine")  # two subtrees: one for a helper
    result = cli("log", "d", "--name", "t", "--type", "dataset")
    assert_error(result, f"d/sub/{shown}")
    assert "rename it" in result.err
    assert_error(cli("versions", "t"), "not found")
    for split in (10**9, 1):  # scanned by one process, then with a helper
        monkeypatch.setattr(scan, "SPLIT_MIN_FILES", split)
        monkeypatch.setattr(scan, "_CAN_SPLIT", True)
        monkeypatch.setattr(forking, "alone", lambda: True)  # beside pytest's threads
        with pytest.raises(LocalPathError, match="rename it"):
            Artifact("t", "dataset").add_dir("d")
    os.rename(ws / "d" / "sub", ws / "d" / "sub2")  # as a directory's name, too
    os.rename(ws / "d" / "sub2", ws / "d" / name)
    with pytest.raises(LocalPathError, match="rename it"):
        Artifact("t", "dataset").add_dir("d")


def test_a_file_whose_name_is_no_utf8_is_refused_naming_it_unless_named(ws: Path) -> None:
    path = write(ws / BAD, b"hi")
    with pytest.raises(LocalPathError, match=r"bad\\xffname.*rename it"):
        Artifact("t", "dataset").add_file(path)
    with artifacts.init() as run:
        artifact = Artifact("t", "dataset")
        artifact.add_file(path, name="good")
        run.log_artifact(artifact)
    assert [e.path for e in artifact.files()] == ["good"]


def test_a_directory_below_a_path_that_is_no_utf8_is_logged_and_logged_again_unchanged(
    ws: Path, cli: CLI
) -> None:
    """Only names in the version must be UTF-8: the path to them may be anything."""
    data = ws / BAD / "data"
    write(data / "f", b"f")
    write(data / "sub" / "g", b"g")
    alone = write(ws / BAD / "alone.txt", b"alone")
    cli("log", data, "--name", "t", "--type", "dataset").ok()
    assert cli("log", data, "--name", "t", "--type", "dataset").ok().out.startswith("unchanged")
    cli("log", alone, "--name", "a", "--type", "dataset").ok()
    assert cli("log", alone, "--name", "a", "--type", "dataset").ok().out.startswith("unchanged")
    with artifacts.init() as run:
        root = run.use_artifact("t:latest").download(str(ws / BAD / "out"))
    assert root == str(ws / BAD / "out") and (ws / BAD / "out" / "sub" / "g").read_bytes() == b"g"


def test_a_path_that_is_no_utf8_is_printed_by_the_cli_whatever_the_output_encoding(
    ws: Path,
) -> None:
    """Under a locale whose output is strict UTF-8 (PYTHONIOENCODING=utf-8 stands for
    one): the path's bytes go to the output as they are, and an error line shows them
    escaped."""
    write(ws / BAD / "data" / "f", b"f")
    env = cli_env(ws / ".artifacts", PYTHONIOENCODING="utf-8")

    def cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
        argv = [sys.executable, "-m", "artifacts", *map(str, args)]
        return subprocess.run(argv, cwd=ws, env=env, capture_output=True, timeout=60)

    assert cli("log", ws / BAD / "data", "--name", "t", "--type", "dataset").returncode == 0
    done = cli("download", "t:latest", "--root", ws / BAD / "out")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"to " + os.fsencode(ws / BAD / "out") + b"\n")
    failed = cli("log", ws / BAD / "missing", "--name", "t", "--type", "dataset")
    assert failed.returncode == 1 and b"internal error" not in failed.stderr
    assert failed.stderr.decode().endswith("bad\\xffname/missing\n"), failed.stderr


@pytest.mark.parametrize("unreadable", ["secret", "sub"])
def test_a_file_or_directory_log_cannot_read_is_named_with_what_to_do(
    ws: Path, unprivileged_cli: CLI, unreadable: str
) -> None:
    write(ws / "d" / "ok", b"ok")
    write(ws / "d" / "secret", b"secret")
    write(ws / "d" / "sub" / "f", b"f")
    (ws / "d" / unreadable).chmod(0)
    result = unprivileged_cli("log", "d", "--name", "t", "--type", "dataset")
    assert_error(result, f"cannot read {ws / 'd' / unreadable}: Permission denied")
    assert "make it readable, or move it out of d" in result.err
    assert_error(unprivileged_cli("versions", "t"), "not found")
    if unreadable == "secret":
        result = unprivileged_cli("log", ws / "d" / "secret", "--name", "t", "--type", "dataset")
        assert_error(result, f"cannot read {ws / 'd' / 'secret'}: Permission denied")
        assert result.err.endswith("; make it readable\n")


def test_log_artifact_of_a_fifo_or_device_says_what_it_is(ws: Path) -> None:
    os.mkfifo(ws / "fifo")
    with artifacts.init() as run:
        for path in (str(ws / "fifo"), os.devnull):
            with pytest.raises(LocalPathError, match="not a regular file or a directory"):
                run.log_artifact(path, name="t", type="dataset")
    with pytest.raises(LookupError):
        artifacts.Api().artifact("t:latest")


def test_every_symlinked_file_of_a_directory_keeps_its_targets_mode_and_stats(
    ws: Path, tmp_path: Path
) -> None:
    """Links are staged after the plain files, their stats one row each: a row too long
    shifted every later link's (the second came out executable, its size 0)."""
    write(ws / "d" / "real" / "one", b"1111")
    write(ws / "d" / "real" / "two", b"22222222")
    os.chmod(ws / "d" / "real" / "two", 0o755)
    for link, target in [("l1", "one"), ("l2", "two"), ("l3", "one"), ("l4", "one")]:
        os.symlink(f"real/{target}", ws / "d" / link)
    rows = dict(scan.scan_tree("d").files.items())
    for link, target in [("l1", "one"), ("l2", "two"), ("l3", "one"), ("l4", "one")]:
        st = os.stat(ws / "d" / "real" / target)
        size, mtime_ns, ctime_ns, inode, executable, _ = rows[link]
        assert (size, mtime_ns, ctime_ns, inode) == (
            st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
        )  # fmt: skip
        assert executable == (target == "two")
    with artifacts.init() as run:
        artifact = Artifact("data", "dataset")
        artifact.add_dir("d")
        run.log_artifact(artifact)
    root = Path(artifact.download(str(tmp_path / "dl")))
    assert [os.access(root / f"l{i}", os.X_OK) for i in (1, 2, 3, 4)] == [0, 1, 0, 0]


class _HighInode:
    """A stat as a filesystem with 64-bit inode numbers gives it (hashed by FUSE's
    mergerfs, an NFS server's file ids): the top bit set."""

    def __init__(self, st: os.stat_result) -> None:
        self._st = st

    def __getattr__(self, name: str) -> object:
        value = getattr(self._st, name)
        return value | 1 << 63 if name == "st_ino" else value


def test_a_filesystem_with_inode_numbers_past_2_63_is_logged_and_logged_again(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(ws / "d" / "f", b"f")
    write(ws / "d" / "real", b"real")
    os.symlink("real", ws / "d" / "link")
    for call in ("stat", "lstat"):
        real = getattr(os, call)
        monkeypatch.setattr(os, call, lambda *a, real=real, **k: _HighInode(real(*a, **k)))
    rows = dict(scan.scan_tree("d").files.items())
    assert rows["f"][3] == os.stat(ws / "d" / "f").st_ino >= 1 << 63
    assert rows["link"][3] == os.stat(ws / "d" / "real").st_ino
    for expected in ("v0", "v0"):  # the second time, from the stat cache: unchanged
        with artifacts.init() as run, warnings.catch_warnings():
            warnings.simplefilter("error")  # no file seen as changed since it was added
            artifact = Artifact("data", "dataset")
            artifact.add_dir("d")
            run.log_artifact(artifact)
        assert artifact.version == expected


def test_a_file_dated_past_2262_is_logged_and_logged_again(ws: Path) -> None:
    """A time in nanoseconds past 2262 (a bad clock, an archive's dates; ext4 keeps them
    to 2446) is more than a signed 64-bit number holds."""
    write(ws / "d" / "future", b"future")
    write(ws / "d" / "past", b"past")
    os.symlink("future", ws / "d" / "link")
    far = 10_413_792_000 * 10**9  # 2300-01-01
    os.utime(ws / "d" / "future", ns=(far, far))
    os.utime(ws / "d" / "past", ns=(-2_000_000_000 * 10**9,) * 2)  # 1906
    if os.stat(ws / "d" / "future").st_mtime_ns != far:
        pytest.skip("this filesystem does not keep a time past 2262")
    for expected in ("v0", "v0"):  # the second time: unchanged
        with artifacts.init() as run, warnings.catch_warnings():
            warnings.simplefilter("error")  # no file seen as changed since it was added
            artifact = Artifact("data", "dataset")
            artifact.add_dir("d")
            run.log_artifact(artifact)
        assert artifact.version == expected
    assert contents(artifact, str(ws / "dl")) == {
        "future": b"future", "link": b"future", "past": b"past"
    }  # fmt: skip


def test_a_file_reference_to_a_fifo_or_device_says_what_it_is(ws: Path) -> None:
    os.mkfifo(ws / "fifo")
    for path in (str(ws / "fifo"), os.devnull):
        with pytest.raises(UsageError, match="not a regular file or a directory"):
            Artifact("t", "dataset").add_reference(f"file://{path}")


# ---- what a download writes: modes ----------------------------------------------------


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process's umask for the test; restored after it."""
    before = os.umask(0o022)
    yield os.umask
    os.umask(before)


def log_tree(ws: Path, files: dict[str, bytes], executable: tuple[str, ...] = ()) -> Artifact:
    data = ws / "data"
    for path, content in files.items():
        write(data / path, content)
    for path in executable:
        os.chmod(data / path, 0o755)
    with artifacts.init() as run:
        artifact = Artifact("data", "dataset")
        artifact.add_dir(str(data))
        run.log_artifact(artifact)
    return artifact


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o077, 0o002])
@pytest.mark.parametrize("into", ["new", "with files"])
def test_downloaded_executables_keep_their_bit_and_take_the_umask(
    ws: Path, tmp_path: Path, umask: Callable[[int], None], mask: int, into: str
) -> None:
    big = os.urandom(3 << 20)  # streamed alone, not read from a pack with the small ones
    artifact = log_tree(
        ws, {"plain": b"p", "run.sh": b"#!/bin/sh\n", "big.bin": big}, ("run.sh", "big.bin")
    )
    root = tmp_path / "dl"
    if into == "with files":
        write(root / "mine", b"mine")
    umask(mask)
    artifact.download(str(root))
    assert mode(root / "plain") == 0o666 & ~mask
    assert mode(root / "run.sh") == mode(root / "big.bin") == 0o777 & ~mask


@pytest.mark.parametrize("mask", [0o077, 0o022, 0o002])
def test_a_new_download_root_takes_the_umask_and_an_empty_one_keeps_its_mode(
    ws: Path, tmp_path: Path, umask: Callable[[int], None], mask: int
) -> None:
    artifact = log_tree(ws, {"f": b"f", "sub/g": b"g"})
    umask(mask)
    artifact.download(str(tmp_path / "new"))
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "sub") == 0o777 & ~mask
    (tmp_path / "empty").mkdir()
    os.chmod(tmp_path / "empty", 0o751)  # chosen by its owner: not the umask's
    artifact.download(str(tmp_path / "empty"))
    assert mode(tmp_path / "empty") == 0o751
    assert (tmp_path / "empty" / "sub" / "g").read_bytes() == b"g"


def test_a_download_into_a_read_only_empty_directory_is_refused(
    ws: Path, tmp_path: Path, unprivileged_cli: CLI
) -> None:
    log_tree(ws, {"f": b"f"})
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    result = unprivileged_cli("download", "data:latest", "--root", root)
    assert_error(result, f"cannot write into {root}: Permission denied")
    assert os.listdir(root) == [] and mode(root) == 0o555


@pytest.mark.parametrize("command", ["download", "checkout"])
def test_a_read_only_directory_below_the_root_is_the_one_named(
    ws: Path, tmp_path: Path, unprivileged_cli: CLI, command: str
) -> None:
    """The root may be writable: the error names the directory that refused."""
    log_tree(ws, {"a": b"a", "sub/b": b"b"})
    root = tmp_path / "dl"
    write(root / "mine", b"mine")
    write(root / "sub" / "extra", b"extra")  # for checkout to delete
    (root / "sub").chmod(0o555)
    # --force: checkout would delete mine and sub/extra, bytes no version holds
    force = ["--force"] if command == "checkout" else []
    result = unprivileged_cli(command, "data:latest", root, *force)
    assert_error(result, f"cannot write into {root / 'sub'}: Permission denied")


@pytest.mark.parametrize("command", ["download", "checkout", "verify"])
def test_a_dir_that_is_a_dangling_symlink_is_said_to_be_one(
    ws: Path, tmp_path: Path, cli: CLI, command: str
) -> None:
    log_tree(ws, {"f": b"f"})
    os.symlink(tmp_path / "gone", tmp_path / "dl")
    result = cli(command, "data:latest", tmp_path / "dl")
    assert_error(result, f"{tmp_path / 'dl'} is a symlink to {tmp_path / 'gone'}, which")
    assert not (tmp_path / "gone").exists()


# ---- what stands in a download's way ----------------------------------------------------


@pytest.mark.parametrize("blocker", ["sub", "a", "z/deep"])
def test_a_download_with_a_file_or_directory_in_its_way_is_refused_before_writing(
    ws: Path, tmp_path: Path, cli: CLI, blocker: str
) -> None:
    """A file where the version needs a directory (sub, z/deep), a directory where it
    needs a file (a): named, with what to do, and nothing written or removed."""
    artifact = log_tree(ws, {"a": b"a", "sub/b": b"b", "z/deep/c": b"c"})
    root = tmp_path / "dl"
    write(root / "mine", b"mine")
    write(root / blocker / "inner" if blocker == "a" else root / blocker, b"in the way")
    before = tree_of(root)
    result = cli("download", "data:latest", "--root", root)
    assert_error(result, f"{root / blocker} is in the way")
    assert "move it" in result.err
    with pytest.raises(UsageError, match="is in the way"):
        artifact.download(str(root))
    assert tree_of(root) == before


def test_a_download_of_a_path_longer_than_the_system_allows_is_refused_before_writing(
    ws: Path, tmp_path: Path, cli: CLI
) -> None:
    """Twenty directories of 250-byte names: a path of 5,000 bytes, which a version may
    hold and no path argument of this system (PATH_MAX, 4,096) can name."""
    deep = "/".join(["n" * 250] * 20) + "/x"
    with artifacts.init() as run:
        artifact = Artifact("data", "dataset")
        artifact.add_file(write(ws / "src", b"x"), name=deep)
        artifact.add_file(str(ws / "src"), name="short")
        run.log_artifact(artifact)
    full = tmp_path / "full"
    write(full / "mine", b"mine")
    for root in (tmp_path / "new", full):
        result = cli("download", "data:latest", "--root", root)
        assert_error(result, "longer than this system allows")
        assert "nnnn…" in result.err and len(result.err) < 500, result.err  # shortened
        assert "--path-prefix" in result.err
        with pytest.raises(UsageError, match="longer than this system allows"):
            artifact.download(str(root))
    assert not (tmp_path / "new").exists() and tree_of(full) == {"mine": b"mine"}
    assert os.listdir(full) == ["mine"]  # not even an empty directory


@pytest.mark.parametrize("command", ["verify", "checkout"])
def test_a_directory_verify_or_checkout_cannot_read_fails_them_naming_it(
    ws: Path, tmp_path: Path, unprivileged_cli: CLI, command: str
) -> None:
    """An extra file in a directory no one may list: verify cannot say the directory
    matches, nor checkout that it removed every other file."""
    log_tree(ws, {"a": b"a"})
    root = tmp_path / "dl"
    write(root / "a", b"a")
    write(root / "hidden" / "extra", b"extra")
    (root / "hidden").chmod(0o300)  # may be written and entered, not listed
    result = unprivileged_cli(command, "data:latest", root)
    assert_error(result, f"cannot read {root / 'hidden'}: Permission denied; make it readable")
    (root / "hidden").chmod(0o755)
    assert (root / "hidden" / "extra").read_bytes() == b"extra"


def test_a_checkout_whose_file_a_store_stands_on_is_refused_before_deleting(
    ws: Path, tmp_path: Path, cli: CLI
) -> None:
    """checkout deletes what is not in the version, but never a store: where one stands
    on a file of the version, nothing is deleted."""
    log_tree(ws, {"a": b"a", "b": b"b"})
    root = tmp_path / "co"
    write(root / "mine", b"mine")
    cli("init", "--store", root / "a").ok()
    result = cli("checkout", "data:latest", root)
    assert_error(result, f"{root / 'a'} is a store, where the version has the file 'a'")
    assert (root / "mine").read_bytes() == b"mine"


@pytest.mark.parametrize("command", ["checkout", "download"])
@pytest.mark.parametrize("theirs", ["dir", "file"])  # a repository's .git, a worktree's
@pytest.mark.parametrize("mine", ["dir", "file"])
def test_a_version_holding_git_files_never_writes_them_over_a_repositorys_own(
    ws: Path, tmp_path: Path, cli: CLI, command: str, theirs: str, mine: str
) -> None:
    """A project logged whole holds its .git: checked out or downloaded into another
    repository's worktree, it would replace that repository's refs (its history)."""
    git = {"dir": (".git/HEAD", b"ref: refs/heads/x\n"), "file": (".git", b"gitdir: x\n")}
    path, data = git[theirs]
    log_tree(ws, {path: data.replace(b"x", b"theirs"), "code.py": b"theirs"})
    root = tmp_path / "project"
    path, data = git[mine]
    write(root / path, data.replace(b"x", b"mine"))
    write(root / "mine.py", b"mine")
    before = tree_of(root)
    result = cli(command, "data:latest", root)
    assert_error(result, f"{root / '.git'} is a version control system's own")
    assert tree_of(root) == before


# ---- artifacts:// ------------------------------------------------------------------------


def test_an_fsspec_get_leaves_no_file_of_corrupt_bytes_nor_writes_through_a_link(
    ws: Path, tmp_path: Path
) -> None:
    """get() of a large file streams it in blocks, each written as it comes: the
    verdict comes with the last. The file takes its name only once it is read whole."""
    big = os.urandom(10 << 20)  # more than one of fsspec's 4 MiB blocks
    artifact = log_tree(ws, {"big.bin": big, "small.txt": b"small"})
    fs = fsspec.filesystem("artifacts", store=str(ws / ".artifacts"))
    victim = write(tmp_path / "victim", b"do not touch")
    os.symlink(victim, tmp_path / "small.txt")
    fs.get(f"{artifact.qualified_name}/small.txt", str(tmp_path / "small.txt"))
    assert Path(victim).read_bytes() == b"do not touch"
    assert not os.path.islink(tmp_path / "small.txt")
    assert (tmp_path / "small.txt").read_bytes() == b"small"
    blob_id = fs.info(f"{artifact.qualified_name}/big.bin")["id"]
    blob = ws / ".artifacts" / "blobs" / blob_id[:2] / blob_id[2:]
    damaged = bytearray(blob.read_bytes())
    damaged[100] ^= 0xFF  # in the first block
    blob.chmod(0o644)
    blob.write_bytes(bytes(damaged))
    with pytest.raises(CorruptObjectError):
        fs.get(f"{artifact.qualified_name}/big.bin", str(tmp_path / "out" / "big.bin"))
    assert os.listdir(tmp_path / "out") == []  # neither the file nor a temporary one


_GET = """
import sys, fsspec
fs = fsspec.filesystem("artifacts", store=sys.argv[1])
try:
    fs.get(sys.argv[2], sys.argv[3])
except PermissionError as exc:
    print(exc.filename)
"""


def test_an_fsspec_get_into_a_read_only_directory_names_the_file_asked_for(
    ws: Path, tmp_path: Path, unprivileged_python: list[str]
) -> None:
    """Not the temporary file written first, which the user never named."""
    artifact = log_tree(ws, {"f.txt": b"f"})
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    lpath = str(tmp_path / "ro" / "f.txt")
    argv = [*unprivileged_python, "-c", _GET, str(ws / ".artifacts")]
    argv += [f"{artifact.qualified_name}/f.txt", lpath]
    done = subprocess.run(argv, env=cli_env(None), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{lpath}\n"


_GET_AFTER_PID_REUSE = """
import os, sys, fsspec
out = sys.argv[3]
os.makedirs(os.path.dirname(out), exist_ok=True)
# Left by a killed process that had this pid (a container's entry point has the same
# one every run): the name this process's first temporary file takes.
open(os.path.join(os.path.dirname(out), f".part-{os.getpid()}-0"), "wb").close()
fsspec.filesystem("artifacts", store=sys.argv[1]).get(sys.argv[2], out)
print(open(out).read())
"""


def test_a_temporary_file_left_by_a_killed_process_of_the_same_pid_is_stepped_over(
    ws: Path, tmp_path: Path
) -> None:
    artifact = log_tree(ws, {"f.txt": b"logged"})
    out = str(tmp_path / "out" / "f.txt")
    proc = python(
        "-c", _GET_AFTER_PID_REUSE, str(ws / ".artifacts"), f"{artifact.qualified_name}/f.txt", out,
        cwd=ws,
    )  # fmt: skip
    assert wait_ok(proc) == "logged\n"


# ---- files written to while they are logged -------------------------------------------


def rewrite_after_fstat(monkeypatch: pytest.MonkeyPatch, path: Path, data: bytes) -> None:
    """Make another writer rewrite ``path`` in place with ``data`` (its size unchanged)
    right after the next os.fstat of it: as the reader opens it to read it."""
    real_fstat = os.fstat
    pending = [data]

    def fstat_then_rewrite(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        if pending and os.path.samestat(result, os.stat(path)):
            with open(path, "r+b") as f:
                f.write(pending.pop())
        return result

    monkeypatch.setattr(os, "fstat", fstat_then_rewrite)


@pytest.mark.parametrize("form", ["packed", "whole", "chunks"])
def test_a_file_rewritten_in_place_as_it_is_read_is_read_again_or_refused(
    ws: Path, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its size unchanged, only its times say it was written to while read: the bytes
    read may mix before and after (bytes the file never held). A small file is read
    again; a large one, refused with what to do."""
    size = 900_000 if form == "packed" else 3 << 20  # packed: below 1 MiB, read at once
    old, new = b"a" * size, b"b" * size
    path = ws / "d" / "f"
    write(path, old)
    if form == "chunks":
        Repository.open(str(ws / ".artifacts")).set_chunking("always", MIN_CHUNKED)
    artifact = Artifact("data", "dataset")
    artifact.add_file(str(path), policy="immutable")  # no stat of its own before the read
    os.utime(path, ns=(1, 1))  # an old file: what the stat cache would vouch for, if asked
    with artifacts.init() as run:
        rewrite_after_fstat(monkeypatch, path, new)
        if form == "packed":
            run.log_artifact(artifact)
            assert artifact.get_entry("f").size == size
        else:
            with pytest.raises(UsageError, match="was written to while it was being read"):
                run.log_artifact(artifact)
        monkeypatch.undo()
    if form == "packed":
        assert contents(artifact, str(ws / "dl")) == {"f": new}


# ---- names as shown ------------------------------------------------------------------


def test_a_name_with_bidirectional_overrides_is_shown_escaped(ws: Path, cli: CLI) -> None:
    """U+202E turns the rest of a line around: "invoice\u202efdp.exe" reads as
    "invoiceexe.pdf" on a terminal. Shown escaped, it cannot pass for another name."""
    names = ["invoice\u202efdp.exe", "isolate\u2066x\u2069.txt", "mark\u200f.txt"]
    for name in names:
        write(ws / "d" / name, b"x")
    cli("log", "d", "--name", "t", "--type", "dataset").ok()
    shown = cli("show", "t:latest").ok().out
    assert not any(c in shown for c in "\u202e\u2066\u2069\u200f"), shown
    for escaped in ["invoice\\u202efdp.exe", "isolate\\u2066x\\u2069.txt", "mark\\u200f.txt"]:
        assert escaped in shown, shown


_DOWNLOAD = """
import sys, artifacts
artifact = artifacts.Api().artifact(sys.argv[1])
try:
    artifact.download(sys.argv[2])
except PermissionError as exc:
    print(exc.filename)
"""


def test_a_download_into_a_read_only_directory_names_the_file_asked_for(
    ws: Path, tmp_path: Path, unprivileged_python: list[str]
) -> None:
    """From the library too: not the temporary name it writes first."""
    log_tree(ws, {"sub/f.txt": b"f"})
    root = tmp_path / "dl"
    write(root / "mine", b"mine")
    (root / "sub").mkdir()
    (root / "sub").chmod(0o555)
    argv = [*unprivileged_python, "-c", _DOWNLOAD, "data:latest", str(root)]
    env = cli_env(ws / ".artifacts")
    done = subprocess.run(argv, cwd=ws, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{root / 'sub' / 'f.txt'}\n"
