"""The ``artifacts`` command, driven as a user would: a subprocess per command."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import artifacts
from artifacts import cli
from artifacts.cli import versions as versions_command
from artifacts.files import blob_id_of_file
from cas import Blob, Repository
from tests.helpers import remove_deep, tree_of, write

ROOT = Path(__file__).resolve().parent.parent
ENV = {"ARTIFACTS_ENTITY": "team", "ARTIFACTS_PROJECT": "proj"}


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def ok(self) -> Result:
        assert self.rc == 0, f"exit {self.rc}\nstdout: {self.out}\nstderr: {self.err}"
        return self


def cli_env(store: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTS_")}
    env.update(ENV, PYTHONPATH=str(ROOT), **extra)
    if store is not None:
        env["ARTIFACTS_STORE"] = str(store)
    return env


def run(args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "artifacts", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


CLI = Callable[..., Result]


def make_cli(cwd: Path, store: Path | None, **extra: str) -> CLI:
    env = cli_env(store, **extra)
    return lambda *args: run(tuple(str(a) for a in args), cwd, env)


def assert_error(result: Result, fragment: str, rc: int = 1) -> None:
    """Exactly one line on stderr, no traceback, the given exit status."""
    assert result.rc == rc, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("artifacts: error: "), result.err
    assert fragment in lines[0], result.err
    assert "Traceback" not in result.err + result.out


def make_data(root: Path) -> Path:
    write(root / "train.csv", "a,b\n1,2\n")
    write(root / "sub" / "x.txt", "x\n")
    write(root / "old.txt", "old\n")
    return root


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def run_cli(tmp_path: Path, store: Path) -> CLI:
    return make_cli(tmp_path, store)


def log_with_api(store: Path, data: Path, name: str, aliases: list[str] | None = None) -> None:
    """Log in this process: quicker than the CLI, for tests about other commands."""
    with artifacts.init(entity="team", project="proj", store=str(store), job_type="seed") as r:
        artifact = artifacts.Artifact(name, "dataset")
        artifact.add_dir(str(data))
        r.log_artifact(artifact, aliases=aliases)


@pytest.fixture
def seeded(tmp_path: Path, store: Path) -> Path:
    """dataset v0 (train.csv, sub/x.txt, old.txt) and v1 (train.csv changed, old.txt gone,
    new.txt added); v0 has alias ``best``."""
    data = make_data(tmp_path / "data")
    log_with_api(store, data, "dataset", ["best"])
    write(data / "train.csv", "a,b\n1,2\n3,4\n")
    (data / "old.txt").unlink()
    write(data / "new.txt", "new\n")
    log_with_api(store, data, "dataset")
    return data


def show_json(run_cli: CLI, spec: str) -> dict:
    return json.loads(run_cli("show", spec, "--json").ok().out)


# ---- help ------------------------------------------------------------------


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, path + (name,))
    return found


def _commands_of(parser: argparse.ArgumentParser) -> list[str]:
    return [name for path, _ in _parsers(parser) if len(path) == 1 for name in path]


def test_each_group_registers_the_commands_the_table_gives_it() -> None:
    # A command imports and builds its group alone, found in cli.GROUPS: a command
    # missing there would be built only by `artifacts --help`.
    assert _commands_of(cli.build_parser()) == [n for names in cli.GROUPS.values() for n in names]
    for names in cli.GROUPS.values():
        assert _commands_of(cli.build_parser([names[0]])) == list(names)


@pytest.mark.parametrize(
    "argv",
    [
        ["log", "data", "--name", "d"],
        ["--store", "log", "ls"],  # a global option's value that is a command's name
        ["--store=/x", "--project", "gc", "diff", "a", "b"],
        ["--proj", "init", "ls"],  # an abbreviated global option takes its value too
        ["--debug", "remote", "add", "origin", "/r"],
    ],
)
def test_a_command_alone_parses_as_every_command_does(argv: list[str]) -> None:
    alone = cli.build_parser(argv)
    assert len(_commands_of(alone)) < len(_commands_of(cli.build_parser()))
    expected = vars(cli.build_parser().parse_args(argv))
    assert vars(alone.parse_args(argv)) == expected


@pytest.mark.parametrize("first", ["-h", "--help", "--he", "--version", "--vers"])
def test_the_top_help_or_version_before_a_command_builds_every_command(first: str) -> None:
    assert _commands_of(cli.build_parser([first, "log"])) == _commands_of(cli.build_parser())


def test_a_short_command_imports_no_other_group() -> None:
    # What start-up costs: `log` imported every group, fsck, gc and the remotes, and
    # built every parser (a fifth of a short log's time).
    code = (
        "import sys\n"
        "from artifacts import cli\n"
        "cli.build_parser(['log', 'x']).parse_args(['log', 'x'])\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    unwanted = {f"artifacts.cli.{g}" for g in cli.GROUPS if g != "versions"}
    unwanted |= {"remotes", "cas.fsck", "cas.gc", "hashlib", "webbrowser"}
    assert unwanted.isdisjoint(loaded), unwanted.intersection(loaded)


def test_a_command_on_a_terminal_imports_no_network_storage() -> None:
    # On a terminal, retries and lock waits are shown: the logger was found by importing
    # the network storage (fsspec, asyncio), 0.2 s of every command there.
    code = (
        "import sys\n"
        "from artifacts import cli\n"
        "cli.progress_shown = lambda: True\n"
        "with cli._retries_shown():\n"
        "    pass\n"
        "print('fsspec' in sys.modules, 'cas.storage.network' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_every_command_has_an_example_in_its_help(tmp_path: Path) -> None:
    parsers = _parsers(cli.build_parser())
    names = {" ".join(p) for p, _ in parsers}
    for expected in ("init", "log", "ls", "versions", "show", "diff", "download", "checkout"):
        assert expected in names
    for expected in ("verify", "alias add", "alias rm", "cat-object", "fsck", "remote add"):
        assert expected in names
    for expected in ("remote ls", "remote rm", "push", "fetch", "pull", "rebase", "clone", "gc"):
        assert expected in names
    for path, parser in parsers:
        assert "example:" in (parser.epilog or ""), path
        assert "artifacts " in (parser.epilog or ""), path
    run_cli = make_cli(tmp_path, None)
    top = run_cli("--help").ok()
    assert "example:" in top.out and "checkout" in top.out and "fsck" in top.out
    log_help = run_cli("log", "--help").ok()
    assert "--metadata" in log_help.out and "example:" in log_help.out
    assert "--store URL" in log_help.out  # global options work after the command too


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "artifacts"
    if not script.exists():
        pytest.skip("the package is not installed (pip install -e .)")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: artifacts" in proc.stdout


# ---- init, log, ls, versions -------------------------------------------------


def test_init_creates_store_in_cwd_and_commands_find_it_from_below(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "deep" / "er").mkdir(parents=True)
    here = make_cli(project, None)
    first = here("init").ok()
    assert (project / ".artifacts").is_dir()
    assert first.out.strip() == f"initialised empty store at {project / '.artifacts'}"
    assert here("init").ok().out.startswith("store already exists at")
    data = make_data(tmp_path / "data")
    below = make_cli(project / "deep" / "er", None)
    assert below("log", data, "--name", "ds", "--type", "dataset").ok().out == "team/proj/ds:v0\n"
    assert not (project / "deep" / ".artifacts").exists()
    assert "ds" in here("ls").ok().out
    other = tmp_path / "explicit"
    explicit = here("init", "--store", other).ok()
    assert explicit.out.strip() == f"initialised empty store at {other}"


def test_log_makes_versions_and_reports_unchanged(
    tmp_path: Path, run_cli: CLI, store: Path
) -> None:
    data = make_data(tmp_path / "data")
    meta = '{"rows": 1, "source": "unit"}'
    first = run_cli(
        "log", data, "--name", "dataset", "--type", "dataset", "--alias", "best",
        "--alias", "golden", "--description", "first cut", "--metadata", meta,
    ).ok()  # fmt: skip
    assert first.out == "team/proj/dataset:v0\n" and first.err == ""
    again = run_cli("log", data, "--name", "dataset", "--type", "dataset").ok()
    assert again.out == "unchanged: team/proj/dataset:v0\n"
    write(data / "train.csv", "changed\n")
    as_json = json.loads(
        run_cli("log", data, "--name", "dataset", "--type", "dataset", "--json").ok().out
    )
    assert as_json["version"] == "team/proj/dataset:v1" and as_json["created"] is True
    # A single file; the name defaults to the file's.
    model = write(tmp_path / "model.bin", b"\0weights")
    assert run_cli("log", model, "--type", "model").ok().out == "team/proj/model.bin:v0\n"
    # Global options, before or after the command.
    assert run_cli("--project", "other", "log", model, "--type", "model").ok().out == (
        "team/other/model.bin:v0\n"
    )
    assert run_cli("log", model, "--type", "model", "--entity", "me").ok().out == (
        "me/proj/model.bin:v0\n"
    )
    info = show_json(run_cli, "dataset:v0")
    assert info["metadata"] == {"rows": 1, "source": "unit"}
    assert info["description"] == "first cut"
    assert info["aliases"] == ["best", "golden"]
    assert_error(run_cli("log", data, "--name", "dataset", "--type", "model"), "has type 'dataset'")


def test_log_with_a_bad_alias_fails_first_and_makes_no_version(
    tmp_path: Path, run_cli: CLI, store: Path
) -> None:
    data = write(tmp_path / "a.txt", "bytes no other test stores")
    result = run_cli("log", data, "--name", "ds", "--type", "t", "--alias", "..")
    assert_error(result, "invalid name '..': aliases are")
    assert_error(run_cli("versions", "ds"), "artifact team/proj/ds not found")
    repo = artifacts.runs.open_registry(str(store)).repo
    assert not repo.objects.has(blob_id_of_file(str(data)))


def test_ls_and_versions(seeded: Path, run_cli: CLI) -> None:
    model = write(seeded.parent / "m.bin", b"m")
    run_cli("log", model, "--name", "model", "--type", "model").ok()
    table = run_cli("ls").ok().out.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "LATEST", "SIZE", "ALIASES"]
    assert table[1].split() == ["dataset", "dataset", "v1", "18", "B", "best:v0"]
    assert table[2].split()[:3] == ["model", "model", "v0"]
    rows = json.loads(run_cli("ls", "--json").ok().out)
    assert rows[0] == {
        "name": "dataset",
        "type": "dataset",
        "latest": "v1",
        "size": 18,
        "aliases": {"latest": "v1", "best": "v0"},
    }
    empty = run_cli("ls", "--project", "nothing-here").ok()
    assert empty.out == "" and "no artifacts in team/nothing-here" in empty.err
    assert "team/proj/dataset" in run_cli("ls", "--all").ok().out

    versions = run_cli("versions", "dataset").ok().out.splitlines()
    assert versions[0].split() == ["VERSION", "ALIASES", "CREATED", "SIZE", "RUN"]
    assert versions[1].split()[:2] == ["v1", "latest"]
    assert versions[2].split()[:2] == ["v0", "best"]
    listed = json.loads(run_cli("versions", "team/proj/dataset", "--json").ok().out)
    assert [v["version"] for v in listed] == ["v1", "v0"]
    assert listed[1]["aliases"] == ["best"] and listed[0]["run"]
    from_v0 = json.loads(run_cli("versions", "dataset:v0", "--json").ok().out)
    assert [v["version"] for v in from_v0] == ["v0"]


def test_ls_lists_the_rest_when_one_artifact_is_damaged(seeded: Path, run_cli: CLI) -> None:
    model = write(seeded.parent / "m.bin", b"m")
    run_cli("log", model, "--name", "model", "--type", "model").ok()
    repo = Repository.open(str(seeded.parent / "store"))
    head = "team/proj/artifacts/model/latest"
    repo.refs.set_if_equals(head, repo.refs.read(head), repo.objects.put(Blob(b"not a commit")))
    listed = run_cli("ls")
    assert listed.rc == 1 and "Traceback" not in listed.err
    rows = [line.split() for line in listed.out.splitlines()]
    assert rows[1][:3] == ["dataset", "dataset", "v1"]
    assert rows[2] == ["model", "?", "?", "damaged"]
    assert "model: damaged:" in listed.err and "fsck" in listed.err
    as_json = run_cli("ls", "--json")
    assert as_json.rc == 1
    assert [r.get("damaged", False) for r in json.loads(as_json.out)] == [False, True]


# ---- show, diff --------------------------------------------------------------


def test_show_metadata_lineage_and_files(seeded: Path, run_cli: CLI, store: Path) -> None:
    with artifacts.init(entity="team", project="proj", store=str(store), job_type="train") as r:
        r.use_artifact("dataset:v0")
    text = run_cli("show", "dataset:best").ok().out
    assert text.splitlines()[0] == "team/proj/dataset:v0 (dataset)"
    assert "logged by:   run " in text and "[seed" in text
    assert "used by:     run " in text and "[train" in text
    assert "files (3):" in text
    assert "  4 B  old.txt" in text and "  2 B  sub/x.txt" in text and "8 B  train.csv" in text
    info = show_json(run_cli, "dataset:v0")
    assert [f["path"] for f in info["files"]] == ["old.txt", "sub/x.txt", "train.csv"]
    assert info["logged_by"]["job_type"] == "seed"
    assert [u["job_type"] for u in info["used_by"]] == ["train"]
    assert show_json(run_cli, "dataset")["name"] == "team/proj/dataset:v1"
    assert show_json(run_cli, "dataset")["used_by"] == []


def test_diff(seeded: Path, run_cli: CLI) -> None:
    out = run_cli("diff", "dataset:v0", "dataset:v1").ok().out
    assert out == "A new.txt\nD old.txt\nM train.csv\n"
    back = json.loads(run_cli("diff", "dataset:v1", "dataset:best", "--json").ok().out)
    assert back["added"] == ["old.txt"] and back["removed"] == ["new.txt"]
    assert back["modified"] == ["train.csv"]
    assert run_cli("diff", "dataset:v1", "dataset:latest").ok().out == ""


def test_control_characters_in_names_are_escaped_on_a_terminal(
    tmp_path: Path, store: Path, run_cli: CLI
) -> None:
    names = ["red\x1b[31m.txt", "bell\x07.txt", "line\u2028sep.txt"]
    data = tmp_path / "data"
    write(data / "plain.txt", "p")
    log_with_api(store, data, "ds")
    for name in names:
        write(data / name, name)
    log_with_api(store, data, "ds")
    shown = run_cli("show", "ds").ok().out + run_cli("diff", "ds:v0", "ds:v1").ok().out
    assert not any(c in shown for c in "\x1b\x07\u2028")
    for escaped in ["red\\x1b[31m.txt", "bell\\x07.txt", "line\\u2028sep.txt"]:
        assert shown.count(escaped) == 2, shown  # once in show, once in diff
    files = show_json(run_cli, "ds")["files"]
    assert sorted(f["path"] for f in files) == sorted([*names, "plain.txt"])


# ---- files -------------------------------------------------------------------


def test_diff_checkout_and_verify_of_trees_1000_deep(
    tmp_path: Path, run_cli: CLI, store: Path
) -> None:
    deep = "/".join(["d"] * 1000)  # as deep as the interpreter's recursion limit
    with artifacts.init(entity="team", project="proj", store=str(store)) as r:
        for name in ("f1", "f2"):
            draft = artifacts.Artifact("deep", "dataset")
            draft.add_file(str(write(tmp_path / name, name)), f"{deep}/{name}")
            r.log_artifact(draft)
    assert run_cli("diff", "deep:v0", "deep:v1").ok().out == f"D {deep}/f1\nA {deep}/f2\n"
    try:
        run_cli("download", "deep:v0", "out").ok()
        run_cli("verify", "deep:v0", "out").ok()
        run_cli("checkout", "deep:v1", "out").ok()  # f1 goes, f2 comes
        run_cli("verify", "deep:v1", "out").ok()
    finally:
        remove_deep(tmp_path / "out")  # pytest's own cleanup recurses, and would fail


def test_download_checkout_verify(seeded: Path, run_cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli("download", "dataset:v0", out).ok()
    assert "downloaded 3 files" in done.out and done.err == ""
    assert (out / "train.csv").read_text() == "a,b\n1,2\n"
    assert (out / "sub" / "x.txt").read_text() == "x\n"
    only = tmp_path / "only"
    run_cli("download", "dataset:v0", only, "--path-prefix", "sub/").ok()
    assert [p.name for p in only.rglob("*") if p.is_file()] == ["x.txt"]
    run_cli("download", "dataset:v1").ok()  # default: ./artifacts/NAME:VER
    assert (tmp_path / "artifacts" / "dataset:v1" / "new.txt").read_text() == "new\n"

    write(out / "stray.txt", "not in the version")
    assert_error(run_cli("checkout", "dataset:v1", out), "(stray.txt): log them, move them")
    assert (out / "old.txt").exists() and (out / "stray.txt").exists()  # nothing changed
    checked = run_cli("checkout", "dataset:v1", out, "--force").ok()
    assert "removed 2 other files" in checked.out  # stray.txt and v0's old.txt
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "new.txt",
        "sub/x.txt",
        "train.csv",
    ]
    assert (
        run_cli("verify", "dataset:v1", out).ok().out == f"ok: {out} matches team/proj/dataset:v1\n"
    )
    write(out / "train.csv", "tampered\n")
    assert_error(run_cli("verify", "dataset:v1", out), "content differs: train.csv")
    assert_error(run_cli("verify", "dataset:v0", out), "does not match")


def test_checkout_into_the_project_root_leaves_its_store_alone(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    cli = make_cli(project, None)  # the store: project/.artifacts
    cli("init").ok()
    write(project / "a.txt", "a\n")
    cli("log", ".", "--name", "ds", "--type", "t").ok()
    write(project / "a.txt", "b\n")
    cli("log", ".", "--name", "ds", "--type", "t").ok()
    store = tree_of(project / ".artifacts")
    checked = cli("checkout", "ds:v0", ".").ok()
    assert checked.out == "checked out team/proj/ds:v0 into . (1 file written)\n"
    assert (project / "a.txt").read_text() == "a\n"
    assert tree_of(project / ".artifacts").items() >= store.items()
    assert "v1" in cli("versions", "ds").ok().out


def test_checkout_in_a_project_keeps_the_files_no_version_holds(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    cli = make_cli(project, None)  # the store: project/.artifacts
    cli("init").ok()
    write(project / "data" / "a.txt", "a\n")
    write(project / "data" / "b.txt", "b\n")
    cli("log", "data", "--name", "ds", "--type", "t").ok()
    write(project / "train.py", "print('my work')\n")
    # `checkout ds:v0 .` where `ds:v0 data` was meant: train.py and data/ are in no
    # version of the name at those paths, and train.py's bytes are nowhere in the store.
    assert_error(cli("checkout", "ds:v0", "."), "1 file(s) in . whose bytes no version holds")
    assert (project / "train.py").read_text() == "print('my work')\n"
    assert (project / "data" / "a.txt").read_text() == "a\n"
    assert not (project / "a.txt").exists()  # refused before anything was written

    # A file of a version edited in place is kept the same way; the one left as logged
    # is not even rewritten.
    write(project / "data" / "a.txt", "edited\n")
    assert_error(cli("checkout", "ds:v0", "data"), "(a.txt): log them, move them")
    assert (project / "data" / "a.txt").read_text() == "edited\n"
    cli("log", "data", "--name", "ds", "--type", "t").ok()  # v1 holds the edit now
    assert cli("checkout", "ds:v0", "data").ok().out.endswith("(1 file written)\n")
    assert (project / "data" / "a.txt").read_text() == "a\n"

    forced = cli("checkout", "ds:v0", ".", "--force").ok()
    assert forced.out.endswith("(2 files written, removed 3 other files)\n")
    assert sorted(p.name for p in project.iterdir()) == [".artifacts", "a.txt", "b.txt"]


def test_download_keeps_a_file_edited_in_place_and_skips_those_as_logged(
    seeded: Path, run_cli: CLI, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_cli("download", "dataset:v0", out).ok()
    write(out / "train.csv", "my edit\n")
    assert_error(run_cli("download", "dataset:v0", out), "download would overwrite 1 file(s)")
    assert (out / "train.csv").read_text() == "my edit\n"
    # v1 over v0: every file there is in the store; the one v1 shares is not rewritten.
    write(out / "train.csv", "a,b\n1,2\n")
    again = run_cli("download", "dataset:v1", out).ok()
    assert again.out.endswith("(1 already there)\n") and "downloaded 2 files" in again.out
    write(out / "train.csv", "my edit\n")
    run_cli("download", "dataset:v1", out, "--force").ok()
    assert (out / "train.csv").read_text() == "a,b\n1,2\n3,4\n"


def test_checkout_does_as_the_library_does_where_a_file_stands_for_a_directory(
    tmp_path: Path, store: Path, run_cli: CLI
) -> None:
    log_with_api(store, make_data(tmp_path / "data"), "dataset")
    version = tree_of(tmp_path / "data")
    by_cli, by_library = tmp_path / "by-cli", tmp_path / "by-library"
    for root in (by_cli, by_library):
        write(root / "sub", "a file where the version has a directory")
        write(root / "train.csv" / "deep", "a directory where the version has a file")
        write(root / "stray.txt", "not in the version")
    checked = run_cli("checkout", "dataset:v0", by_cli, "--force").ok()
    assert checked.out.endswith("(3 files written, removed 3 other files)\n")
    with artifacts.init(entity="team", project="proj", store=str(store)) as r:
        r.use_artifact("dataset:v0").checkout(str(by_library))
    assert tree_of(by_cli) == tree_of(by_library) == version


def test_alias_add_and_rm(seeded: Path, run_cli: CLI) -> None:
    assert run_cli("alias", "add", "dataset:v1", "prod").ok().out == (
        "team/proj/dataset:v1 is now 'prod'\n"
    )
    assert show_json(run_cli, "dataset:prod")["name"] == "team/proj/dataset:v1"
    run_cli("alias", "rm", "dataset:v1", "prod").ok()
    assert_error(run_cli("show", "dataset:prod"), "no version has alias 'prod'")
    assert_error(run_cli("alias", "rm", "dataset:v1", "prod"), "has no alias 'prod'")
    assert_error(run_cli("alias", "add", "dataset:v1", "v7"), "invalid name 'v7'")


# ---- objects -----------------------------------------------------------------


def test_cat_object(seeded: Path, run_cli: CLI) -> None:
    info = show_json(run_cli, "dataset:v0")
    blob = next(f["digest"] for f in info["files"] if f["path"] == "train.csv")
    raw = subprocess.run(
        [sys.executable, "-m", "artifacts", "cat-object", blob],
        cwd=seeded.parent,
        env=cli_env(seeded.parent / "store"),
        capture_output=True,
        timeout=60,
    )
    assert raw.returncode == 0 and raw.stdout == b"a,b\n1,2\n"
    assert run_cli("cat-object", "-t", blob).ok().out == "blob\n"
    tree = run_cli("cat-object", info["digest"]).ok().out.splitlines()
    assert tree[0] == "kind: tree"
    assert tree[2].split()[0] == "tree" and tree[2].endswith("sub")
    assert tree[3].split()[2] == blob and tree[3].endswith("train.csv")
    commit = run_cli("cat-object", info["id"][:12]).ok().out  # a unique prefix will do
    assert commit.startswith(f"kind: commit\ntree: {info['digest']}\n") and '"version": 0' in commit
    as_json = json.loads(run_cli("cat-object", info["id"], "--json").ok().out)
    assert as_json["tree"] == info["digest"] and as_json["meta"]["artifact"] == "dataset"
    assert_error(run_cli("cat-object", "ab" * 32), "not found")


def _loose(store: Path, object_id: str) -> Path:
    return store / "objects" / object_id[:2] / object_id[2:]


def _content(store: Path, object_id: str) -> Path:
    """Where a large blob is kept: its content alone."""
    return store / "blobs" / object_id[:2] / object_id[2:]


def test_fsck_clean_then_corrupt_and_missing(tmp_path: Path, run_cli: CLI, store: Path) -> None:
    data = make_data(tmp_path / "data")
    write(data / "big.bin", os.urandom((1 << 20) + 10))  # loose: large blobs are not packed
    run_cli("log", data, "--name", "dataset", "--type", "dataset").ok()
    write(data / "more.txt", "more\n")
    run_cli("log", data, "--name", "dataset", "--type", "dataset").ok()
    clean = run_cli("fsck").ok()
    assert clean.out.startswith("checked ") and "blobs" in clean.out and clean.err == ""
    assert json.loads(run_cli("fsck", "--json").ok().out)["ok"] is True

    v0 = show_json(run_cli, "dataset:v0")
    big = next(f["digest"] for f in v0["files"] if f["path"] == "big.bin")
    path = _content(store, big)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"CORRUPTION")
    _loose(store, v0["id"]).unlink()  # v1's parent commit
    bad = run_cli("fsck")
    assert_error(bad, "fsck found 2 missing or damaged objects")
    assert f"corrupt blob {big}" in bad.out
    assert f"missing commit {v0['id']}" in bad.out
    report = json.loads(run_cli("fsck", "--json").out)
    assert report["ok"] is False
    assert sorted(p["problem"] for p in report["problems"]) == ["corrupt", "missing"]


def test_fsck_repair_from_a_remote(tmp_path: Path, run_cli: CLI, store: Path) -> None:
    data = make_data(tmp_path / "data")
    write(data / "big.bin", os.urandom((1 << 20) + 10))
    run_cli("log", data, "--name", "dataset", "--type", "dataset").ok()
    origin = tmp_path / "origin"
    make_cli(tmp_path, origin)("init").ok()
    run_cli("remote", "add", "origin", origin).ok()
    run_cli("push").ok()
    big = next(
        f["digest"] for f in show_json(run_cli, "dataset")["files"] if f["path"] == "big.bin"
    )
    path = _content(store, big)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"CORRUPTION")
    assert_error(run_cli("fsck"), "fsck found 1 missing or damaged object")
    fixed = run_cli("fsck", "--repair", "origin").ok()
    assert fixed.out.startswith("repaired 1 object from origin")
    assert json.loads(run_cli("fsck", "--json").ok().out)["ok"] is True
    assert (tmp_path / "data" / "big.bin").read_bytes() == _read_blob(store, big)


def _read_blob(store: Path, digest: str) -> bytes:
    from cas import Repository

    return Repository.open(str(store)).objects.read_blob(bytes.fromhex(digest))


# ---- errors ------------------------------------------------------------------


ERRORS: list[tuple[tuple[str, ...], str]] = [
    (("show", "dataset:v9"), "dataset:v9 not found: the latest version is v0"),
    (("show", "dataset:nosuch"), "no version has alias 'nosuch'"),
    (("show", "bad name!"), "invalid name 'bad name!'"),
    (("show", "a/b/c/d"), "expected [[ENTITY/]PROJECT/]NAME[:VERSION]"),
    (("versions", "missing"), "artifact team/proj/missing not found"),
    (("diff", "dataset:v0", "dataset:v7"), "dataset:v7 not found"),
    (("log", "nope", "--type", "dataset"), "no such file or directory: nope"),
    (("log", ".", "--type", "d", "--metadata", "{bad"), "--metadata is not valid JSON"),
    (("log", ".", "--type", "d", "--metadata", "[1]"), "--metadata must be a JSON object"),
    (("download", "dataset:v0", "out", "--path-prefix", "zz/"), "no files under 'zz/'"),
    (("verify", "dataset:v0", "no-such-dir"), "no such directory: no-such-dir"),
    (("alias", "rm", "dataset:v0", "nope"), "has no alias 'nope'"),
    (("cat-object", "xyz!"), "not an object id"),
    (("remote", "rm", "nope"), "no remote named 'nope'"),
    (("clone", "no-such-store", "c"), "nothing to clone: no-such-store is not a store"),
    (("--entity", "bad entity", "ls"), "invalid name 'bad entity'"),
]
DEBUG = ("--debug", "show", "dataset:v9")


@pytest.fixture(scope="module")
def error_results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], Result]:
    """Every failing command of ERRORS (and DEBUG), run at once against one store."""
    tmp = tmp_path_factory.mktemp("errors")
    log_with_api(tmp / "store", make_data(tmp / "data"), "dataset", ["best"])
    run_cli = make_cli(tmp, tmp / "store")
    commands = [args for args, _ in ERRORS] + [DEBUG]
    with ThreadPoolExecutor(8) as pool:  # each is a new interpreter: overlap them
        return dict(zip(commands, pool.map(lambda a: run_cli(*a), commands), strict=True))


# Under pytest-xdist (make test), one worker runs the error_results commands, once.
@pytest.mark.xdist_group("cli-errors")
@pytest.mark.parametrize("args, fragment", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_errors_are_one_line(
    error_results: dict[tuple[str, ...], Result], args: tuple[str, ...], fragment: str
) -> None:
    result = error_results[args]
    assert_error(result, fragment)
    assert result.out == ""


@pytest.mark.xdist_group("cli-errors")
def test_debug_shows_the_traceback(error_results: dict[tuple[str, ...], Result]) -> None:
    result = error_results[DEBUG]
    assert result.rc == 1
    assert "Traceback (most recent call last)" in result.err
    assert result.err.splitlines()[-1].startswith("artifacts: error: ")


def test_missing_store_and_usage_errors(tmp_path: Path) -> None:
    nowhere = make_cli(tmp_path, tmp_path / "nowhere")
    assert_error(nowhere("ls"), f"no store at {tmp_path / 'nowhere'}; create one with")
    assert not (tmp_path / "nowhere").exists()  # reading never creates a store
    usage = nowhere("show")
    assert usage.rc == 2 and "usage: artifacts show" in usage.err and "Traceback" not in usage.err


def test_interrupt_and_internal_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    def broken(args: object) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(versions_command, "cmd_ls", interrupted)
    assert cli.main(["ls"]) == 130
    assert capsys.readouterr().err == "artifacts: interrupted\n"
    monkeypatch.setattr(versions_command, "cmd_ls", broken)
    assert cli.main(["ls"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: boom" in err


def _seconds(args: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run(args, env=env, check=True)
    return time.monotonic() - start


def test_an_interrupt_at_any_instant_prints_one_line_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group (as a terminal sends it) at instants spread
    from Python's imports to the end of a parallel log; earlier versions stay intact."""
    data = tmp_path / "data"
    for i in range(2500):  # enough for the log to hash in worker processes
        write(data / f"d{i % 5}" / f"f{i}.txt", f"{i}\n")
    store = tmp_path / "store"
    log_with_api(store, data, "ds")
    env = cli_env(store)
    args = [
        sys.executable,
        "-m",
        "artifacts",
        "log",
        str(data),
        "--name",
        "ds",
        "--type",
        "dataset",
    ]
    # Before the interpreter reaches our first line, Python's own start-up handles a signal
    # (no program can do otherwise): the trials start past twice a bare interpreter's start.
    startup = 2 * max(_seconds([sys.executable, "-c", "pass"], env) for _ in "abc")
    # The instants are spread over what one whole log of a changed file takes here.
    whole = float("inf")
    for timed in "ab":
        (data / "d0" / "f0.txt").write_text(f"timed {timed}\n")
        whole = min(whole, _seconds(args, env))
    assert whole > startup
    interrupted = 0
    for trial, share in enumerate([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]):
        delay = startup + share * (whole - startup)
        (data / "d0" / "f0.txt").write_text(f"trial {trial}\n")  # so each log has work to do
        proc = subprocess.Popen(
            args, cwd=tmp_path, env=env, start_new_session=True, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err and "Exception ignored" not in err, (delay, err)
        if proc.returncode == 130:
            interrupted += 1
            assert err.splitlines()[-1:] == ["artifacts: interrupted"], (delay, err)
        else:  # it had finished before the signal landed
            assert proc.returncode == 0 and err == "", (delay, proc.returncode, err)
    assert interrupted >= 5  # the delays must land mostly inside the command
    make_cli(tmp_path, store)("fsck").ok()
    got = tmp_path / "v0"
    make_cli(tmp_path, store)("download", "ds:v0", got).ok()
    assert (got / "d0" / "f0.txt").read_text() == "0\n"
    assert len(list(got.rglob("*.txt"))) == 2500


# ---- progress bars -------------------------------------------------------------


def run_in_pty(args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal; (exit status, all output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "artifacts", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_progress_bars_only_on_a_terminal(tmp_path: Path, store: Path, run_cli: CLI) -> None:
    data = tmp_path / "data"
    write(data / "big.bin", os.urandom(3 << 20))
    env = cli_env(store)
    rc, out = run_in_pty(("log", data, "--name", "d", "--type", "dataset"), tmp_path, env)
    assert rc == 0 and "team/proj/d:v0" in out
    assert "hashing:" in out and "%|" in out
    rc, out = run_in_pty(("download", "d:v0", tmp_path / "tty"), tmp_path, env)
    assert rc == 0 and "downloading:" in out and "%|" in out

    write(data / "more.bin", os.urandom(2 << 20))
    piped = run_cli("log", data, "--name", "d", "--type", "dataset").ok()
    assert piped.out == "team/proj/d:v1\n" and piped.err == ""
    piped = run_cli("download", "d:v1", tmp_path / "piped").ok()
    assert piped.err == "" and "%|" not in piped.out


# ---- remotes and gc ------------------------------------------------------------


def test_push_names_the_refs_it_held_back(tmp_path: Path) -> None:
    """A ref we did not change that moved on the remote is not sent, and push says
    so instead of "everything up to date"."""
    a = make_cli(tmp_path, tmp_path / "a")
    c = make_cli(tmp_path, tmp_path / "c" / ".artifacts")
    origin, data = tmp_path / "origin", make_data(tmp_path / "data")
    a("log", data, "--name", "dataset", "--type", "dataset").ok()
    a("remote", "add", "origin", origin).ok()
    a("push").ok()
    make_cli(tmp_path, None)("clone", origin, tmp_path / "c").ok()
    write(data / "train.csv", "from a\n")
    a("log", data, "--name", "dataset", "--type", "dataset").ok()
    a("push").ok()  # the remote's dataset moves on; c still has v0
    c("log", data, "--name", "other", "--type", "dataset").ok()
    out = c("push").ok().out
    assert "updated team/proj/other\n" in out
    assert "not sent (changed on the remote; `artifacts pull` brings it) team/proj/dataset" in out
    assert "everything up to date" not in out


def test_remote_push_clone_pull_rebase(tmp_path: Path) -> None:
    pytest.importorskip("remotes.sync", reason="the remotes package is not written yet")
    a = make_cli(tmp_path, tmp_path / "a")
    c = make_cli(tmp_path, tmp_path / "c" / ".artifacts")
    origin = tmp_path / "origin"
    data = make_data(tmp_path / "data")
    a("log", data, "--name", "dataset", "--type", "dataset").ok()
    make_cli(tmp_path, origin)("init").ok()
    assert a("remote", "add", "origin", origin).ok().out == f"added remote origin -> {origin}\n"
    assert a("remote", "ls").ok().out == f"origin\t{origin}\n"

    pushed = a("push").ok().out
    assert pushed.startswith("pushed ") and "to origin" in pushed
    assert "updated team/proj/dataset\n" in pushed
    assert "everything up to date" in a("push").ok().out

    cloned = make_cli(tmp_path, None)("clone", origin, tmp_path / "c").ok()
    assert cloned.out == f"cloned {origin} into {tmp_path / 'c' / '.artifacts'}\n"
    assert "dataset" in c("ls").ok().out
    write(data / "train.csv", "from c\n")
    assert c("log", data, "--name", "dataset", "--type", "dataset").ok().out == (
        "team/proj/dataset:v1\n"
    )
    c("push", "origin", "dataset").ok()
    fetched = a("fetch", "--json").ok().out
    assert json.loads(fetched)["objects_downloaded"] > 0
    assert "fast-forwarded team/proj/dataset" in a("pull").ok().out
    assert show_json(a, "dataset")["name"] == "team/proj/dataset:v1"

    # Both log a v2: the second push is refused, pull says so, rebase fixes it.
    write(data / "train.csv", "c's v2\n")
    c("log", data, "--name", "dataset", "--type", "dataset").ok()
    c("push").ok()
    write(data / "train.csv", "a's v2\n")
    a("log", data, "--name", "dataset", "--type", "dataset").ok()
    assert_error(a("push"), "rejected")
    pulled = a("pull").ok().out
    assert "diverged team/proj/dataset" in pulled and "artifacts rebase origin" in pulled
    assert "rebased team/proj/dataset" in a("rebase", "origin", "dataset").ok().out
    assert show_json(a, "dataset")["name"] == "team/proj/dataset:v3"
    a("push").ok()
    c("pull").ok()
    assert c("diff", "dataset:v2", "dataset:v3").ok().out == "M train.csv\n"
    assert a("remote", "rm", "origin").ok().out == "removed remote origin\n"
    assert_error(a("push"), "no remote named 'origin'")


def test_gc(seeded: Path, run_cli: CLI) -> None:
    pytest.importorskip("cas.gc", reason="cas.gc is not written yet")
    before = json.loads(run_cli("fsck", "--json").ok().out)
    planned = json.loads(run_cli("gc", "--grace", "0", "--dry-run", "--json").ok().out)
    assert planned["dry_run"] and planned["objects_fossilized"] > 0
    said = run_cli("gc", "--grace", "0").ok().out
    assert said.startswith("delete 0 fossils") and f"move {planned['objects_fossilized']} " in said
    assert "kept for a later pass: " in said
    report = json.loads(run_cli("gc", "--grace", "0", "--dry-run", "--json").ok().out)
    assert report["objects_fossilized"] == 0  # the first gc moved everything aside
    assert report["fossils_waiting"] == planned["objects_fossilized"]  # deleted 2 leases on
    after = json.loads(run_cli("fsck", "--json").ok().out)
    assert after["ok"] and after["objects"] == before["objects"]


def test_the_public_names_are_exported_lazily() -> None:
    # `artifacts` imports its names on first use (see artifacts/__main__.py): each one in
    # __all__ must resolve, and nothing else may.
    assert sorted(artifacts.__all__) == sorted(artifacts._EXPORTS)
    for name in artifacts.__all__:
        assert getattr(artifacts, name) is not None
    with pytest.raises(AttributeError):
        artifacts.no_such_name  # noqa: B018


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = make_cli(tmp_path, None)("--version").ok()
    assert result.out == f"artifacts {version('artifacts')}\n" and not result.err


def test_a_failed_clone_can_be_run_again(tmp_path: Path) -> None:
    """A clone that fails part way says why in one line and leaves no store behind
    to make the next attempt fail with "already exists"."""
    a = make_cli(tmp_path, tmp_path / "a")
    origin = tmp_path / "origin"
    a("log", make_data(tmp_path / "data"), "--name", "dataset", "--type", "dataset").ok()
    a("remote", "add", "origin", origin).ok()
    a("push").ok()
    pack = max(origin.glob("packs/*.pack"), key=lambda p: p.stat().st_size)
    good = pack.read_bytes()
    pack.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    cli = make_cli(tmp_path, None)
    assert_error(cli("clone", origin, tmp_path / "c"), "corrupt")
    pack.write_bytes(good)
    cloned = cli("clone", origin, tmp_path / "c").ok()
    assert cloned.out == f"cloned {origin} into {tmp_path / 'c' / '.artifacts'}\n"
    assert "dataset" in make_cli(tmp_path, tmp_path / "c" / ".artifacts")("ls").ok().out


# ---- the grammar of W&B's `wandb artifact` commands (issue 19, part 7) -----------


def test_ls_takes_entity_project_as_w_and_b_does_and_filters_by_type(
    seeded: Path, run_cli: CLI, tmp_path: Path
) -> None:
    model = write(tmp_path / "w.bin", "w")
    run_cli("log", model, "--name", "model", "--type", "model").ok()

    def names(*args: str) -> list[str]:
        return [r["name"] for r in json.loads(run_cli("ls", *args, "--json").ok().out)]

    assert names("proj") == names("team/proj") == names() == ["dataset", "model"]
    assert names("team/proj", "--type", "model") == ["model"]
    assert names("--type", "dataset") == ["dataset"]
    assert names("other") == names("nobody/proj") == []
    assert_error(run_cli("ls", "proj", "--all"), "--all")
    assert_error(run_cli("ls", "a/b/c"), "expected [ENTITY/]PROJECT")


def test_log_takes_project_slash_name_and_the_type_defaults_to_dataset(
    run_cli: CLI, tmp_path: Path
) -> None:
    data = make_data(tmp_path / "data")
    assert run_cli("log", data).ok().out == "team/proj/data:v0\n"
    assert run_cli("show", "data", "--json").ok().out.count('"type": "dataset"') == 1
    assert run_cli("log", data, "--name", "vision/images").ok().out == "team/vision/images:v0\n"
    assert run_cli("log", data, "--name", "lab/vision/images").ok().out == "lab/vision/images:v0\n"
    assert_error(run_cli("log", data, "--name", "images:v3"), "--name")
    assert json.loads(run_cli("ls", "vision", "--json").ok().out)[0]["name"] == "images"


def test_download_takes_root_and_checks_the_type(
    seeded: Path, run_cli: CLI, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_cli("download", "dataset:v1", "--root", out, "--type", "dataset").ok()
    assert tree_of(out) == tree_of(seeded)
    assert_error(
        run_cli("download", "dataset:v0", "--root", tmp_path / "m", "--type", "model"),
        "has type 'dataset', not 'model'",
    )
    assert not (tmp_path / "m").exists()
    assert_error(run_cli("download", "dataset", tmp_path / "a", "--root", tmp_path / "b"), "--root")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_w_and_b_short_options_and_its_default_alias_work(run_cli: CLI, tmp_path: Path) -> None:
    data = make_data(tmp_path / "data")
    # As wandb's docs write it: `wandb artifact put -n proj/name -t model -a latest -a best`.
    out = run_cli("log", data, "-n", "proj/weights", "-t", "model", "-a", "latest", "-a", "best")
    assert out.ok().out == "team/proj/weights:v0\n"
    info = show_json(run_cli, "weights")
    assert (info["type"], info["aliases"]) == ("model", ["latest", "best"])
    assert [r["name"] for r in json.loads(run_cli("ls", "-t", "model", "--json").ok().out)] == [
        "weights"
    ]


SWALLOWED_INTERRUPT = """
import sys, time
import artifacts.cli
from artifacts import __main__ as entry

class Finaliser:
    def __del__(self):  # Python only reports what a finaliser raises
        raise KeyboardInterrupt

def command():
    Finaliser()  # as if Ctrl-C landed in a finaliser while the command ran
    time.sleep(5)  # where the interrupt must land instead
    return 0

artifacts.cli.main = command
sys.exit(entry.main())
"""


def test_an_interrupt_python_swallows_lands_in_the_command(tmp_path: Path) -> None:
    """Ctrl-C inside a finaliser (Python reports it, "Exception ignored in ...") is
    raised again in the command's code: one line, exit 130, nothing about hooks."""
    done = subprocess.run(
        [sys.executable, "-c", SWALLOWED_INTERRUPT],
        cwd=tmp_path, env=cli_env(None), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 130 and done.stderr == "artifacts: interrupted\n", done.stderr


def test_log_says_unchanged_when_another_terminal_logged_the_same_files_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two terminals log the same files at once: one makes the version, the other finds
    it identical and reuses it, and must not say it made it too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARTIFACTS_STORE", raising=False)
    (tmp_path / ".artifacts").mkdir()
    write(tmp_path / "data" / "a.txt", "a")
    real_log = artifacts.Run.log_artifact

    def other_terminal_first(run: artifacts.Run, artifact: artifacts.Artifact, **kw: object):
        same = artifacts.Artifact("data", "dataset")
        same.add_dir("data")
        with artifacts.init(job_type="other-terminal") as other:
            real_log(other, same)  # after this run read `latest`, before it logs
        return real_log(run, artifact, **kw)

    monkeypatch.setattr(artifacts.Run, "log_artifact", other_terminal_first)
    assert cli.main(["log", "data", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is False
