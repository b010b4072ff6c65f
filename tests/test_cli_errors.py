"""User errors on the command line, made as users make them, each in a real process:
one line that says what to do, a non-zero exit, no traceback (docs/cli.md, "Errors and
exit status")."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import write
from tests.test_cli import (
    CLI,
    Result,
    assert_error,
    cli_env,
    log_with_api,
    make_cli,
    make_data,
)


@pytest.fixture
def seeded_cli(tmp_path: Path) -> CLI:
    """A store holding team/proj/dataset:v0, the working directory tmp_path/work."""
    log_with_api(tmp_path / "store", make_data(tmp_path / "data"), "dataset")
    (tmp_path / "work").mkdir()
    return make_cli(tmp_path / "work", tmp_path / "store")


# ---- ui ----------------------------------------------------------------------------


def test_ui_on_a_port_out_of_range_is_a_usage_error(seeded_cli: CLI) -> None:
    result = seeded_cli("ui", "--port", "99999")
    assert result.rc == 2 and "Traceback" not in result.err, result
    assert "--port" in result.err and "65535" in result.err


def test_ui_on_a_port_in_use_says_so_in_one_line(seeded_cli: CLI) -> None:
    pytest.importorskip("uvicorn")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = seeded_cli("ui", "--port", port)
    assert_error(result, f"cannot listen on 127.0.0.1:{port}")
    assert "--port" in result.err
    assert result.out == ""  # no "serving ..." for a server that never ran


# ---- store and remote URLs ---------------------------------------------------------


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("s4://bucket/x", "unknown storage scheme 's4' in 's4://bucket/x'"),
        ("S3://bucket/x", "did you mean s3://bucket/x?"),
        ("s3:/bucket/x", "did you mean s3://bucket/x?"),
        ("gs:bucket", "did you mean gs://bucket?"),
    ],
)
def test_a_mistyped_store_url_is_named_with_what_to_type(
    seeded_cli: CLI, tmp_path: Path, url: str, fragment: str
) -> None:
    assert_error(seeded_cli("--store", url, "ls"), fragment)
    assert_error(seeded_cli("init", "--store", url), fragment)  # made a directory s3:
    assert os.listdir(tmp_path / "work") == []


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("s4://bucket/x", "unknown storage scheme 's4'"),
        ("s3:/bucket/x", "did you mean s3://bucket/x?"),
        ("", "an empty URL"),
    ],
)
def test_remote_add_refuses_a_url_no_store_can_have(
    seeded_cli: CLI, url: str, fragment: str
) -> None:
    assert_error(seeded_cli("remote", "add", "origin", url), fragment)
    assert seeded_cli("remote", "ls").ok().out == ""  # nothing was added


@pytest.mark.parametrize(
    "command",
    [
        ("--store", "file://", "init"),
        ("--store", "file://", "log", "../data", "-n", "x"),
        ("push", "file://"),
        ("remote", "add", "origin", "file://"),
        ("clone", "file://", "copy"),
    ],
)
def test_a_file_url_without_a_path_is_refused_not_taken_as_here(
    seeded_cli: CLI, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`file://$DIR` with DIR unset: init, log and push laid a store out in the working
    directory, among the user's files (refs/, packs/, tmp/ beside them)."""
    write(tmp_path / "work" / "mine.txt", "the user's\n")
    assert_error(seeded_cli(*command), "file:// without a path (an unset variable?)")
    assert os.listdir(tmp_path / "work") == ["mine.txt"]
    assert seeded_cli("remote", "ls").ok().out == ""


@pytest.mark.parametrize("command", ["push", "fetch", "pull", "rebase"])
def test_an_empty_remote_is_refused_as_an_unset_variable(seeded_cli: CLI, command: str) -> None:
    """It said "no remote named ''; add one with `artifacts remote add  URL`"."""
    assert_error(seeded_cli(command, ""), "REMOTE is empty (an unset variable?)")


def test_remote_add_of_a_name_taken_is_refused_and_set_url_moves_it(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    """A typo in `remote add origin …` silently pointed origin, and every later push,
    at another store. Like git, the name taken is refused; `set-url` moves it."""
    first, second = tmp_path / "first", tmp_path / "second"
    seeded_cli("remote", "add", "origin", first).ok()
    seeded_cli("push").ok()
    seeded_cli("remote", "add", "origin", first).ok()  # the same URL again: nothing to do
    assert_error(
        seeded_cli("remote", "add", "origin", second),
        f"remote origin already exists ({first}): "
        f"`artifacts remote set-url origin {second}` points it there",
    )
    assert seeded_cli("remote", "ls").ok().out == f"origin\t{first}\n"
    assert_error(seeded_cli("remote", "set-url", "nope", second), "no remote named 'nope'")
    moved = seeded_cli("remote", "set-url", "origin", second).ok()
    assert moved.out == f"remote origin -> {second}\n"
    assert seeded_cli("remote", "ls").ok().out == f"origin\t{second}\n"
    # What we saw of the first store says nothing of the second: all is pushed there.
    assert "updated team/proj/dataset" in seeded_cli("push").ok().out


def test_a_scheme_whose_package_is_missing_says_so(seeded_cli: CLI) -> None:
    pytest.importorskip("fsspec")
    try:
        import paramiko  # noqa: F401
    except ImportError:
        assert_error(seeded_cli("--store", "sftp://127.0.0.1:9/x", "ls"), "paramiko")
    else:
        pytest.skip("paramiko is installed")


def test_clone_of_a_mistyped_url_says_what_was_meant(seeded_cli: CLI, tmp_path: Path) -> None:
    assert_error(seeded_cli("clone", "s3:/bucket/x", tmp_path / "c"), "did you mean s3://bucket/x?")
    assert not (tmp_path / "c").exists()


# ---- a store that is not one, or not whole -------------------------------------------


@pytest.mark.parametrize("config", ["{garbage", "[]", ""])
@pytest.mark.parametrize("command", [("remote", "ls"), ("log", "../data", "--name", "other")])
def test_a_damaged_config_json_is_named_with_what_to_do(
    seeded_cli: CLI, tmp_path: Path, config: str, command: tuple[str, ...]
) -> None:
    (tmp_path / "store" / "config.json").write_text(config)
    result = seeded_cli(*command)
    assert_error(result, f"{tmp_path / 'store'}: config.json is not a JSON object")
    assert "replace it with {}" in result.err


# ---- where a version's files go ------------------------------------------------------


@pytest.mark.parametrize("command", ["download", "checkout", "verify"])
@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_a_file_where_a_directory_is_expected_is_named(
    seeded_cli: CLI, tmp_path: Path, command: str, where: str
) -> None:
    (tmp_path / "work" / "a-file").write_text("mine\n")
    result = seeded_cli(command, "dataset:v0", where)
    assert_error(result, "a-file is a file, not a directory")
    assert (tmp_path / "work" / "a-file").read_text() == "mine\n"


@pytest.mark.parametrize("command", ["download", "checkout", "verify"])
def test_an_empty_directory_name_is_refused(seeded_cli: CLI, tmp_path: Path, command: str) -> None:
    """`artifacts checkout x:v0 "$DIR"` with DIR unset wrote into ./artifacts/x:v0 and said it
    had checked out "into " (nothing)."""
    assert_error(seeded_cli(command, "dataset:v0", ""), "an empty DIR")
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.parametrize(
    "command, fragment",
    [
        (("clone", "{store}", ""), "an empty DIR (an unset variable?)"),
        (("log", ""), "an empty PATH (an unset variable?)"),
        (("rm", ""), "an empty NAME (an unset variable?)"),
    ],
)
def test_an_empty_positional_argument_is_refused_as_an_unset_variable(
    seeded_cli: CLI, tmp_path: Path, command: tuple[str, ...], fragment: str
) -> None:
    """`clone URL "$DIR"` cloned into the working directory; `log ""` said "no such file
    or directory: " and `rm ""` "`rm ` would delete every version: … (:v0)"."""
    args = [part.format(store=tmp_path / "store") for part in command]
    assert_error(seeded_cli(*args), fragment)
    assert list((tmp_path / "work").iterdir()) == []


@contextlib.contextmanager
def tmpfs(place: Path, options: str) -> Iterator[Path]:
    place.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(place)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield place
    finally:
        subprocess.run(["umount", str(place)], check=True)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only filesystem (root ignores a directory's mode bits, not this)."""
    with tmpfs(tmp_path / "read-only", "ro") as place:
        yield place


@pytest.mark.parametrize("command", ["download", "checkout"])
def test_a_read_only_destination_is_named_not_a_temporary_file(
    seeded_cli: CLI, read_only_dir: Path, command: str
) -> None:
    for where in (read_only_dir / "out", read_only_dir / "deep" / "out"):
        result = seeded_cli(command, "dataset:v0", where)
        assert_error(result, f"cannot write into {where}: Read-only file system")
        assert ".part-" not in result.err


@pytest.mark.parametrize("command", ["download", "checkout"])
def test_an_empty_mount_point_is_written_into(
    seeded_cli: CLI, tmp_path: Path, command: str
) -> None:
    """A volume mounted for the data (docker -v, a scratch disk), still empty: the files
    were written beside it to be renamed onto it, which a mount point refuses (EBUSY)."""
    with tmpfs(tmp_path / "volume", "rw") as volume:
        seeded_cli(command, "dataset:v0", volume).ok()
        assert (volume / "train.csv").read_text() == "a,b\n1,2\n"
        assert not [p for p in (tmp_path).iterdir() if ".part-" in p.name]


# ---- gc ------------------------------------------------------------------------------


@pytest.mark.parametrize("grace", ["-5", "nan"])
def test_gc_refuses_a_grace_period_that_is_no_period(seeded_cli: CLI, grace: str) -> None:
    """-5 and 'nan' were both taken as 0 (every unreachable object old enough), without a word."""
    result = seeded_cli("gc", "--dry-run", "--grace", grace)
    assert result.rc == 2 and "Traceback" not in result.err, result
    assert "--grace" in result.err and "seconds >= 0" in result.err


@pytest.mark.parametrize("command", [("ls",), ("show", "dataset"), ("fsck",), ("remote", "ls")])
def test_a_directory_that_is_no_store_is_refused_and_left_as_it_was(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """--store at the project instead of its .artifacts/ (or at any directory of one's own):
    reading it said 'no artifacts' (exit 0) and left a tmp/ in it."""
    project = make_data(tmp_path / "project")
    before = sorted(p.name for p in project.iterdir())
    result = make_cli(tmp_path, project)(*command)
    assert_error(result, f"{project} is not a store")
    assert f"artifacts init --store {project}" in result.err
    assert sorted(p.name for p in project.iterdir()) == before


@pytest.mark.parametrize("command", [("ls",), ("log", "data", "--name", "x")])
def test_a_file_given_as_the_store_is_named(tmp_path: Path, command: tuple[str, ...]) -> None:
    make_data(tmp_path / "data")
    (tmp_path / "notes.txt").write_text("mine\n")
    result = make_cli(tmp_path, tmp_path / "notes.txt")(*command)
    assert_error(result, f"{tmp_path / 'notes.txt'} is a file, not a store")


def test_clone_into_a_file_is_named(seeded_cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "work" / "notes.txt").write_text("mine\n")
    result = seeded_cli("clone", tmp_path / "store", "notes.txt")
    assert_error(result, "notes.txt is a file, not a directory")


# ---- a store that does not answer ------------------------------------------------------


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        return listening.getsockname()[1]  # closed on leaving: connections are refused


@pytest.mark.parametrize("command", [("ls",), ("fetch", "{url}"), ("pull", "{url}")])
def test_an_http_store_that_refuses_connections_is_an_error_not_an_empty_store(
    seeded_cli: CLI, command: tuple[str, ...]
) -> None:
    """fsspec's http filesystem lists nothing where it cannot connect: ls said 'no
    artifacts', fetch 'fetched 0 objects', exit 0."""
    url = f"http://127.0.0.1:{closed_port()}/store"
    args = [word.format(url=url) for word in command]
    start = time.monotonic()
    result = seeded_cli("--store", url, *args) if command == ("ls",) else seeded_cli(*args)
    assert time.monotonic() - start < 30
    assert_error(result, f"{url} did not answer")
    assert "check that the server is up" in result.err


def test_an_ftp_store_that_refuses_connections_is_named(seeded_cli: CLI) -> None:
    url = f"ftp://127.0.0.1:{closed_port()}/store"
    assert_error(seeded_cli("--store", url, "ls"), f"{url} did not answer")


# ---- log -------------------------------------------------------------------------------


def test_log_of_a_path_whose_name_is_no_artifact_name_says_to_give_one(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    make_data(tmp_path / "work" / "my data (v2)")
    result = seeded_cli("log", "my data (v2)")
    assert_error(result, "invalid name 'my data (v2)'")
    assert "--name" in result.err


def test_log_with_an_empty_name_is_refused(seeded_cli: CLI, tmp_path: Path) -> None:
    """--name "" (an unset variable) logged under the directory's own name."""
    make_data(tmp_path / "work" / "data")
    assert_error(seeded_cli("log", "data", "--name", ""), "--name is empty")
    assert "data" not in seeded_cli("ls").ok().out.split()


# ---- push and rebase by name -----------------------------------------------------------


@pytest.mark.parametrize("command", ["push", "rebase"])
@pytest.mark.parametrize("name", ["nosuch", "proj/dataset"])
def test_push_or_rebase_of_a_name_this_store_lacks_is_refused(
    seeded_cli: CLI, tmp_path: Path, command: str, name: str
) -> None:
    """It said 'pushed 0 objects … everything up to date' (or nothing at all), exit 0."""
    seeded_cli("init", "--store", tmp_path / "remote").ok()
    seeded_cli("remote", "add", "origin", tmp_path / "remote").ok()
    result = seeded_cli(command, "origin", name)
    assert_error(result, f"nothing named {name!r} here")
    assert result.out == ""


@pytest.mark.parametrize(
    "variable, value",
    [("ARTIFACTS_ENTITY", "a/b"), ("ARTIFACTS_ENTITY", ".."), ("ARTIFACTS_PROJECT", "a b")],
)
@pytest.mark.parametrize("command", [("ls",), ("log", "../data", "-n", "x")])
def test_an_entity_or_project_variable_that_is_no_name_is_named(
    tmp_path: Path, variable: str, value: str, command: tuple[str, ...]
) -> None:
    """$ARTIFACTS_ENTITY=a/b listed "no artifacts in a/b/uncategorized"; '..' said
    "invalid name 'refs/../uncategorized/artifacts': not a valid storage key"; neither
    error named the variable it came from."""
    log_with_api(tmp_path / "store", make_data(tmp_path / "data"), "dataset")
    (tmp_path / "work").mkdir()
    cli = make_cli(tmp_path / "work", tmp_path / "store", **{variable: value})
    assert_error(cli(*command), f"${variable} is {value!r}, no {variable[10:].lower()} name")


@pytest.mark.parametrize("option", ["--entity", "--project"])
def test_an_empty_entity_or_project_option_is_refused(seeded_cli: CLI, option: str) -> None:
    """--project "" (an unset variable) listed the default project instead."""
    assert_error(seeded_cli(option, "", "ls"), f"{option} is empty")


@pytest.mark.parametrize("command", [("ls",), ("init",), ("log", "../data", "-n", "x")])
def test_an_empty_store_option_is_refused(
    seeded_cli: CLI, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """--store "" (an unset variable) fell back to $ARTIFACTS_STORE or the nearest
    .artifacts/: init made one in the working directory."""
    assert_error(seeded_cli("--store", "", *command), "--store is empty")
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.parametrize(
    "org, fragment",
    [
        ("", "--org is empty (an unset variable?)"),
        ("a b", "invalid name 'a b': organization names are 1-128 of"),
    ],
)
@pytest.mark.parametrize("command", [("registry", "ls"), ("registry", "create", "models")])
def test_a_bad_organization_is_named_as_given(
    seeded_cli: CLI, command: tuple[str, ...], org: str, fragment: str
) -> None:
    """`--org ''` listed the entity's registries; `--org 'a b'` was named as a ref
    ("invalid name 'a b/wandb-registry-model/registry': ref segments are …")."""
    assert_error(seeded_cli(*command, "--org", org), fragment)
    assert "wandb-registry-models" not in seeded_cli("registry", "ls").out


def test_link_into_a_missing_registry_says_the_command_that_creates_it(seeded_cli: CLI) -> None:
    """It said to call Api().create_registry(name, visibility): Python, on the command line."""
    result = seeded_cli("link", "dataset:v0", "wandb-registry-nope/c")
    assert_error(result, "no registry 'nope' in organization 'team'")
    assert "`artifacts registry create nope --org team`" in result.err
    seeded_cli("registry", "create", "nope", "--org", "team").ok()
    seeded_cli("link", "dataset:v0", "wandb-registry-nope/c").ok()


def test_clone_into_a_store_says_what_to_do_instead(seeded_cli: CLI, tmp_path: Path) -> None:
    seeded_cli("clone", tmp_path / "store", "copy").ok()
    result = seeded_cli("clone", tmp_path / "store", "copy")
    assert_error(result, "copy/.artifacts already exists")
    assert "clone into another directory" in result.err and "artifacts pull" in result.err


@pytest.mark.parametrize("target", ["/etc/hostname", "/no/such/file"])
def test_log_of_a_directory_with_a_link_it_cannot_take_says_what_to_do(
    seeded_cli: CLI, tmp_path: Path, target: str
) -> None:
    data = make_data(tmp_path / "work" / "data")
    (data / "link").symlink_to(target)
    result = seeded_cli("log", "data")
    assert_error(result, f"symlink {data / 'link'}")
    assert "copy its target into data, or remove the link" in result.err


# ---- options between positional arguments ----------------------------------------------


def test_an_option_between_positional_arguments_is_taken_as_anywhere_else(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    """An optional positional after an option was refused: `download dataset:v0 --type
    dataset out` said 'unrecognized arguments: out' under the top-level usage."""
    seeded_cli("download", "dataset:v0", "--type", "dataset", "out").ok()
    assert (tmp_path / "work" / "out" / "train.csv").exists()
    seeded_cli("init", "--store", tmp_path / "remote").ok()
    seeded_cli("remote", "add", "origin", tmp_path / "remote").ok()
    assert (
        "updated team/proj/dataset" in seeded_cli("push", "origin", "--force", "dataset").ok().out
    )


def test_a_command_where_a_clone_was_interrupted_says_to_run_the_clone_again(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    """A clone killed half-way leaves .artifacts.partial (remotes.clone), which the next
    clone resumes; commands there said to create a store with `artifacts init`."""
    copy = tmp_path / "copy"
    (copy / ".artifacts.partial").mkdir(parents=True)
    result = make_cli(copy, None)("ls")
    assert_error(result, f"no store at {copy / '.artifacts'}: a clone into {copy} did not finish")
    assert "run the clone again" in result.err


def test_a_store_on_a_read_only_filesystem_reads_and_names_itself_when_written(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    """A write named a temporary file inside it: 'Read-only file system: …/tmp/tmpnlm4kvze'."""
    with tmpfs(tmp_path / "media", "rw") as media:
        shutil.copytree(tmp_path / "store", media / "store")
        subprocess.run(["mount", "-o", "remount,ro", str(media)], check=True)
        on_media = make_cli(tmp_path / "work", media / "store")
        assert "dataset" in on_media("ls").ok().out
        for command in (("alias", "add", "dataset:v0", "best"), ("log", "../data", "-n", "x")):
            result = on_media(*command)
            assert_error(result, f"the store at {media / 'store'} cannot be written")
            assert "/tmp/tmp" not in result.err and "clone it" in result.err


def test_a_store_without_its_tmp_on_a_read_only_filesystem_is_read(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    """Copied without its tmp/ (rsync --exclude tmp, a bucket synced down), then mounted
    read-only: opening it made tmp/ first, so even ls failed ('Read-only file system:
    …/tmp')."""
    with tmpfs(tmp_path / "media", "rw") as media:
        shutil.copytree(tmp_path / "store", media / "store", ignore=shutil.ignore_patterns("tmp"))
        subprocess.run(["mount", "-o", "remount,ro", str(media)], check=True)
        on_media = make_cli(tmp_path / "work", media / "store")
        assert "dataset" in on_media("ls").ok().out
        on_media("download", "dataset:v0", "out").ok()
        assert_error(on_media("alias", "add", "dataset:v0", "x"), "cannot be written")


def test_gc_dry_run_of_a_store_on_a_read_only_filesystem_only_reads(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    """It wrote gc's clock marker first: 'the store at … cannot be written'."""
    with tmpfs(tmp_path / "media", "rw") as media:
        shutil.copytree(tmp_path / "store", media / "store")
        subprocess.run(["mount", "-o", "remount,ro", str(media)], check=True)
        on_media = make_cli(tmp_path / "work", media / "store")
        result = on_media("gc", "--dry-run").ok()
        assert "would delete 0 fossils" in result.out and result.err == "", result
        assert_error(on_media("gc"), "cannot be written")


def test_a_store_without_tmp_and_locks_is_still_a_store(seeded_cli: CLI, tmp_path: Path) -> None:
    """A bucket's store synced down to a directory has its keys only (refs/, packs/,
    objects/, config.json): no tmp/ nor locks/, which only a local store makes."""
    mirror = tmp_path / "mirror"
    shutil.copytree(tmp_path / "store", mirror, ignore=shutil.ignore_patterns("tmp", "locks"))
    assert "dataset" in make_cli(tmp_path / "work", mirror)("ls").ok().out


@pytest.mark.parametrize("entry", ["refs", "packs"])
@pytest.mark.parametrize("command", ["ls", "fsck", "show dataset:v0"])
def test_a_store_with_a_file_where_a_directory_belongs_is_refused_as_damaged(
    seeded_cli: CLI, tmp_path: Path, entry: str, command: str
) -> None:
    """refs/ replaced by a file read as an empty store: ls and fsck said all was well."""
    damaged = tmp_path / "store" / entry
    shutil.rmtree(damaged)
    write(damaged, "not a directory\n")
    result = seeded_cli(*command.split())
    assert_error(result, f"the store at {tmp_path / 'store'} is damaged: {damaged} is a file")


# ---- a memory:// store, which dies with the command -------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("--store", "memory://x", "log", "../data", "-n", "x"),
        ("remote", "add", "mem", "memory://y"),
        ("push", "memory://y"),
        ("clone", "memory://y", "copy"),
        ("init", "--store", "memory://z"),
    ],
)
def test_a_memory_store_is_refused_on_the_command_line(
    seeded_cli: CLI, command: tuple[str, ...]
) -> None:
    """It lives in one process: a log into one printed its version and kept nothing, a
    push 'pushed 6 objects', exit 0."""
    assert_error(seeded_cli(*command), "memory://")
    assert "lives only as long as one process" in seeded_cli(*command).err
    assert seeded_cli("remote", "ls").ok().out == ""


# ---- aliases ---------------------------------------------------------------------------


def test_latest_is_neither_given_to_an_older_version_nor_taken_from_the_newest(
    tmp_path: Path, seeded_cli: CLI
) -> None:
    """`alias add dataset:v0 latest` said 'dataset:v0 is now 'latest'' and changed nothing;
    `alias rm` of the newest's latest said it had no such alias."""
    write(tmp_path / "data" / "train.csv", "changed\n")
    log_with_api(tmp_path / "store", tmp_path / "data", "dataset")
    message = "'latest' always names the newest version of dataset"
    assert_error(seeded_cli("alias", "add", "dataset:v0", "latest"), message)
    assert_error(seeded_cli("alias", "rm", "dataset:v1", "latest"), message)
    assert "team/proj/dataset:v1" in seeded_cli("show", "dataset:latest").ok().out


# ---- names that are not there -----------------------------------------------------------


@pytest.mark.parametrize(
    "command", [("show", "datset"), ("versions", "datset"), ("alias", "add", "datset:v0", "a")]
)
def test_an_artifact_not_found_says_where_to_look(
    seeded_cli: CLI, command: tuple[str, ...]
) -> None:
    """In another project than meant (--project forgotten, $ARTIFACTS_PROJECT unset) or
    mistyped, the error said only 'artifact team/proj/datset not found'."""
    result = seeded_cli(*command)
    assert_error(result, "artifact team/proj/datset not found")
    assert "`artifacts ls team/proj` lists its artifacts" in result.err
    assert "`artifacts ls --all`" in result.err


# ---- a remote path that is no store -----------------------------------------------------


@pytest.mark.parametrize("command", ["push", "fetch", "pull"])
def test_a_remote_path_holding_other_files_is_not_made_a_store(
    seeded_cli: CLI, tmp_path: Path, command: str
) -> None:
    """`artifacts push ~` (or `/`, meant: a remote's name) wrote refs/, packs/ and blobs/
    into the directory, beside its files."""
    home = make_data(tmp_path / "home")
    before = sorted(p.name for p in home.iterdir())
    result = seeded_cli(command, home)
    assert_error(result, f"{home} is not a store")
    assert sorted(p.name for p in home.iterdir()) == before


def test_log_does_not_lay_a_store_out_among_other_files(seeded_cli: CLI, tmp_path: Path) -> None:
    """`--store ~` (or $ARTIFACTS_STORE set to the project, not its .artifacts/) logged,
    and left refs/, packs/ and blobs/ among the directory's files."""
    project = make_data(tmp_path / "project")
    before = sorted(p.name for p in project.iterdir())
    result = seeded_cli("--store", project, "log", "../data", "--name", "x")
    assert_error(result, f"{project} is not a store")
    assert f"`artifacts init --store {project}`" in result.err
    assert sorted(p.name for p in project.iterdir()) == before
    (tmp_path / "empty").mkdir()
    seeded_cli("--store", tmp_path / "empty", "log", "../data", "--name", "x").ok()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        listening.listen(64)  # the kernel accepts them; nobody reads
        yield listening.getsockname()[1]


def test_an_http_store_that_never_answers_fails_within_the_timeout(
    tmp_path: Path, silent_port: int
) -> None:
    """It waited for aiohttp's own five minutes, saying nothing."""
    url = f"http://127.0.0.1:{silent_port}/store"
    silent = make_cli(tmp_path, None, ARTIFACTS_STORE=url, ARTIFACTS_TIMEOUT="2")
    start = time.monotonic()
    result = silent("ls")
    assert time.monotonic() - start < 15
    assert_error(result, f"{url} did not answer")
    assert "silent for 2 s; allow longer with ARTIFACTS_TIMEOUT=SECONDS" in result.err


def test_link_to_a_registry_without_its_name_is_refused(seeded_cli: CLI) -> None:
    """`wandb-registry-/c` linked into a plain project named 'wandb-registry-'."""
    result = seeded_cli("link", "dataset:v0", "wandb-registry-/c")
    assert_error(result, "no registry name after 'wandb-registry-'")
    assert "wandb-registry-" not in seeded_cli("ls", "--all").out


@pytest.mark.parametrize(
    "target, fragment",
    [
        (
            "wandb-registry-models",
            "wandb-registry-models is a registry: link into one of its collections, "
            "wandb-registry-models/COLLECTION",
        ),
        (
            "wandb-registry-models/c/d",
            "wandb-registry-models is a registry, not an organization: a link target is "
            "[ORG/]wandb-registry-R/COLLECTION",
        ),
    ],
)
def test_link_to_a_registry_as_a_collection_or_an_organization_is_refused(
    seeded_cli: CLI, target: str, fragment: str
) -> None:
    """The registry's name alone made a collection of that name in the project
    (team/proj/wandb-registry-models:v0); with two more parts, an entity of it."""
    seeded_cli("registry", "create", "models").ok()
    assert_error(seeded_cli("link", "dataset:v0", target), fragment)
    assert "wandb-registry-models" not in seeded_cli("ls", "--all").out


def test_ls_of_a_type_none_has_says_so_and_names_the_types_there(seeded_cli: CLI) -> None:
    """It said 'no artifacts in team/proj', where there was a dataset."""
    result = seeded_cli("ls", "--type", "modle")
    assert result.rc == 0 and result.out == ""
    assert result.err == "no artifacts of type 'modle' in team/proj (types there: dataset)\n"


@pytest.mark.parametrize("selector", ["prod", "v01"])
def test_an_alias_not_found_names_those_there_are(seeded_cli: CLI, selector: str) -> None:
    """It said only "no version has alias 'prod'"."""
    seeded_cli("alias", "add", "dataset:v0", "best").ok()
    result = seeded_cli("show", f"dataset:{selector}")
    assert_error(result, f"no version has alias {selector!r} (its aliases: best; or latest, v0)")


def test_a_version_not_found_names_only_the_aliases_and_versions_left(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    """A removed alias, a deleted version were named as there: "no version has alias
    'best' (its aliases: best; …)", "the latest version is v1" of a deleted v1."""
    log_with_api(tmp_path / "store", make_data(tmp_path / "data"), "dataset")  # unchanged
    write(tmp_path / "data" / "train.csv", "v1\n")
    log_with_api(tmp_path / "store", tmp_path / "data", "dataset")
    seeded_cli("alias", "add", "dataset:v0", "best").ok()
    seeded_cli("alias", "add", "dataset:v1", "gone").ok()
    seeded_cli("alias", "rm", "dataset:v0", "best").ok()
    seeded_cli("rm", "dataset:v1", "--delete-aliases").ok()
    assert_error(
        seeded_cli("show", "dataset:best"),
        "dataset:best not found: no version has alias 'best' (its aliases: none; or latest, v0)",
    )
    assert_error(seeded_cli("show", "dataset:v7"), "dataset:v7 not found: the latest version is v0")
    seeded_cli("rm", "dataset:v0").ok()
    for spec in ("dataset:best", "dataset:v7"):
        assert_error(
            seeded_cli("show", spec),
            f"{spec} not found: every version of team/proj/dataset was deleted",
        )


def test_clone_into_a_store_directory_is_refused(seeded_cli: CLI, tmp_path: Path) -> None:
    """`clone .artifacts .artifacts/copy` made a store inside the store it copied."""
    store = tmp_path / "project" / ".artifacts"
    shutil.copytree(tmp_path / "store", store)
    result = seeded_cli("clone", store, store / "copy")
    assert_error(result, f"{store / 'copy'} is in the store at {store}")
    assert not (store / "copy").exists()


@pytest.mark.parametrize("below", ["sub", "refs/x"])
@pytest.mark.parametrize("command", ["init --store", "push", "--store {} log ../data -n x"])
def test_a_store_inside_a_store_is_refused(
    seeded_cli: CLI, tmp_path: Path, below: str, command: str
) -> None:
    """init --store S/sub made a store in the store's directory, and push S/refs/x laid
    one out in its refs: every command of S then failed on a ref holding unreadable bytes."""
    store = tmp_path / "store"
    words = command.format(store / below).split()
    result = seeded_cli(*words, *([] if "{}" in command else [store / below]))
    assert_error(result, f"{store / below} is inside the store at {store}")
    assert not (store / below).exists()
    seeded_cli("fsck").ok()


# ---- Ctrl-C ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["push", "fetch"])
def test_ctrl_c_while_a_dead_remote_is_retried_stops_at_once(
    seeded_cli: CLI, tmp_path: Path, command: str
) -> None:
    """A push read the remote's refs in a pool of threads, and Ctrl-C waited for every
    read to give up (the whole ARTIFACTS_TIMEOUT), then exited 130, or 1 with the
    timeout's error."""
    env = {k: v for k, v in cli_env(tmp_path / "store").items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_DEFAULT_REGION="us-east-1",
        ARTIFACTS_TIMEOUT="60",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "artifacts", command, "s3://bucket/store"],
        cwd=tmp_path, env=env, start_new_session=True, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(3)  # retrying the refused connections by then, for up to 60 s
    assert proc.poll() is None
    interrupted = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert time.monotonic() - interrupted < 5, err
    assert (proc.returncode, err) == (130, "artifacts: interrupted\n")


# ---- where the command runs ------------------------------------------------------------


@pytest.mark.parametrize("command", ["ls", "download dataset:v0 out"])
def test_a_deleted_working_directory_is_said_so(tmp_path: Path, command: str) -> None:
    """A shell left in a directory deleted since (another terminal, a branch switch):
    the error was '[Errno 2] No such file or directory', naming nothing."""
    gone = tmp_path / "gone"
    gone.mkdir()
    env = cli_env(tmp_path / "store")
    script = f'cd "{gone}" && rmdir "{gone}" && exec "{sys.executable}" -m artifacts {command}'
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert_error(result, "the working directory no longer exists")
    assert "cd to one that does" in result.err


def test_push_pull_and_fetch_by_address_as_by_name(seeded_cli: CLI, tmp_path: Path) -> None:
    """`push /path` (or a URL) in place of a remote's name sent the objects, then failed
    recording what the remote held: "invalid name 'remotes//path/…'", exit 1."""
    remote = tmp_path / "remote"
    seeded_cli("push", remote).ok()
    again = seeded_cli("push", "--json", remote).ok()
    assert '"objects_uploaded": 0' in again.out  # what it holds is known: nothing to send
    other = make_cli(tmp_path / "work", tmp_path / "other")
    other("init").ok()
    other("pull", f"file://{remote}").ok()
    other("fetch", remote).ok()
    assert "dataset" in other("ls").ok().out
    # What was seen at an address is kept apart from any named remote's.
    seeded_cli("remote", "add", "origin", remote).ok()
    assert seeded_cli("push", "origin").ok().rc == 0


# ---- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("show", "-data"), ("download", "-data", "out")])
def test_a_name_starting_with_a_dash_says_to_put_it_after_double_dash(
    seeded_cli: CLI, command: tuple[str, ...]
) -> None:
    """argparse took '-data' for an option and said only 'the following arguments are
    required: NAME:VER', or 'unrecognized arguments: -data'."""
    result = seeded_cli(*command)
    assert result.rc == 2 and "Traceback" not in result.err, result
    assert f"put it after --: artifacts {command[0]} -- -data" in result.err, result.err
    # and so it is taken (argparse's intermixed parsing dropped the `--`)
    after = seeded_cli(command[0], "--", *command[1:])
    assert_error(after, "artifact team/proj/-data not found")


# ---- the cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["XDG_CACHE_HOME", "ARTIFACTS_CACHE_DIR"])
def test_a_cache_directory_that_is_a_file_is_named_with_how_to_set_another(
    tmp_path: Path, variable: str
) -> None:
    """It said only 'Not a directory: …/artifacts/files'."""
    write(tmp_path / "cachefile", "not a directory\n")
    cli = make_cli(tmp_path, tmp_path / "store", **{variable: str(tmp_path / "cachefile")})
    result = cli("cache", "cleanup", "1GB")
    assert_error(result, f"the cache directory {tmp_path / 'cachefile'} cannot be used")
    assert f"set {variable} to a directory you can write" in result.err


# ---- a damaged ref -----------------------------------------------------------------------


def test_a_ref_holding_garbage_is_set_aside_by_fsck_repair_and_restored_as_told(
    seeded_cli: CLI, tmp_path: Path
) -> None:
    """Every command said "ref … holds unreadable bytes", and nothing said how to get out;
    fsck --repair wanted a remote and mended objects only."""
    seeded_cli("alias", "add", "dataset:v0", "best").ok()
    ref = "team/proj/artifacts/dataset/latest"
    (tmp_path / "store" / "refs" / ref).write_bytes(b"\x00garbage")
    result = seeded_cli("show", "dataset:v0")
    assert_error(result, f"ref '{ref}' holds unreadable bytes")
    assert "`artifacts fsck --repair` sets it aside" in result.err
    checked = seeded_cli("fsck")
    assert ref in checked.out and "`artifacts fsck --repair` sets damaged refs aside" in checked.err

    repaired = seeded_cli("fsck", "--repair")
    kept = next(tmp_path.glob(f"store/damaged/refs/{ref}.*"))
    assert kept.read_bytes() == b"\x00garbage"
    assert f"set aside damaged ref {ref}: its bytes are in {kept}" in repaired.out, repaired
    # not guessed: the version is said, the ref stays unset until the user says so
    restore = next(w for w in repaired.out.split() if w.startswith(f"{ref}="))
    assert "newest version its other refs name" in repaired.out
    assert_error(seeded_cli("show", "dataset:v0"), "not found")
    seeded_cli("fsck", "--restore", restore.strip("`")).ok()
    assert "best" in seeded_cli("show", "dataset:v0").ok().out
    seeded_cli("fsck").ok()
