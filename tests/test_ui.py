"""``artifacts ui`` through Starlette's TestClient: the pages, escaping, nothing served
from outside the store, read-only, deleted versions, paging, and the CLI without the
extra. The same pages in a real browser: tests/test_ui_browser.py."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("starlette", reason="the ui extra is not installed")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx")

from starlette.testclient import TestClient  # noqa: E402

import artifacts  # noqa: E402
from artifacts.cli import main  # noqa: E402
from artifacts.ui import app as ui_app  # noqa: E402
from artifacts.ui import create_app  # noqa: E402
from cas import Commit, Repository  # noqa: E402
from tests.helpers import write  # noqa: E402
from tests.ui_store import HOSTILE_NAMES, logged, make_store  # noqa: E402

HREF = re.compile(r'href="([^"]*)"')


@pytest.fixture
def client(ws: Path) -> TestClient:
    make_store()
    return TestClient(create_app(str(ws / ".artifacts")))


def test_pages_lead_from_the_projects_to_a_file(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200 and 'href="/team/proj"' in home.text
    project = client.get("/team/proj").text
    assert 'href="/team/proj/raw-data"' in project and ">model<" in project
    versions = client.get("/team/proj/raw-data").text
    assert (
        "with birds" in versions and "latest" in versions and '<code>{"rows": 3}</code>' in versions
    )
    assert 'href="/team/proj/raw-data/v1"' in versions and "clean-run" not in versions
    version = client.get("/team/proj/raw-data/v1").text
    assert 'href="/team/proj/raw-data/v1/files/data.csv"' in version
    csv = client.get("/team/proj/raw-data/v1/files/data.csv").text
    assert "<th>label</th>" in csv and "<td>bird</td>" in csv
    raw = client.get("/team/proj/raw-data/v1/raw/data.csv")
    assert raw.content == b"id,label\n1,cat\n2,dog\n3,bird\n"
    assert raw.headers["content-disposition"].startswith("attachment")
    assert client.get("/team/proj/raw-data/latest/files/notes.txt").text.count("added birds")


def test_the_diff_lists_changes_with_sizes_and_a_line_diff(client: TestClient) -> None:
    page = client.get("/team/proj/raw-data/~diff", params={"from": "v0", "to": "v1"}).text
    assert re.search(r'class="added"><td>added</td><td><a [^>]*>notes.txt', page)
    assert re.search(r'class="modified"><td>modified</td><td><a [^>]*>data.csv', page)
    assert "+3,bird" in page and "-2,dog" not in page


def test_lineage_walks_from_the_model_to_the_raw_dataset(client: TestClient) -> None:
    page = client.get("/team/proj/model/v0/~lineage").text
    for href in (
        "/team/proj/~runs/",  # the training run, and the cleaning one
        "/team/proj/clean-data/v0/~lineage",
        "/team/proj/raw-data/v1/~lineage",
        "/team/wandb-registry-model/classifier/v0/~lineage",  # its registry link
        "/team/proj/model/v0",  # the graph's focus leads to its page
    ):
        assert f'href="{href}' in page, href
    assert "old-data:v0 (deleted)" in page  # used by the cleaning run, deleted since
    assert 'href="/team/proj/old-data' not in page  # and not a link to a missing page
    assert "raw-data:v0" not in page  # not upstream of the model


def test_deleted_versions_do_not_show(client: TestClient) -> None:
    assert ">old-data<" not in client.get("/team/proj").text
    assert client.get("/team/proj/old-data/v0").status_code == 404
    assert "was deleted" in client.get("/team/proj/old-data/v0").text


def test_every_name_is_escaped_and_every_link_works(client: TestClient) -> None:
    page = client.get("/team/proj/hostile/v0").text
    assert (
        "<script" not in page and "<img" not in page and not re.search(r"<[^>]*\sonerror\s*=", page)
    )
    assert "&lt;script&gt;alert(1)&lt;script&gt;.txt" in page
    links = [h for h in HREF.findall(page) if "/hostile/v0/files/" in h]
    assert len(links) == len(HOSTILE_NAMES)
    for link in links:
        url = link.replace("&amp;", "&")
        shown = client.get(url)
        assert shown.status_code == 200, url
        assert "<script" not in shown.text and "<img" not in shown.text
        assert re.search(r"file \d", shown.text)
    assert "default-src 'none'" in client.get("/").headers["content-security-policy"]


@pytest.mark.parametrize(
    "url",
    [
        "/team/proj/raw-data/v1/files/../../../../etc/passwd",
        "/team/proj/raw-data/v1/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/team/proj/raw-data/v1/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "/team/proj/raw-data/v1/raw/%2Fetc%2Fpasswd",
        "/team/proj/raw-data/v1/raw//etc/passwd",
        "/team/proj/raw-data/v1/raw/..%5C..%5Cetc%5Cpasswd",
        "/..%2F..%2Fetc/passwd/x/v0",
        "/team/%2e%2e/raw-data/v1/raw/data.csv",
        "/team/proj/raw-data/v1/raw/data.csv%00.txt",
    ],
)
def test_nothing_outside_the_store_is_served(client: TestClient, url: str) -> None:
    answer = client.get(url)
    assert answer.status_code in (400, 404), answer.text
    assert "root:" not in answer.text


def _listing(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in [root, *root.rglob("*")]}


def test_the_ui_is_read_only(ws: Path, client: TestClient) -> None:
    before = _listing(ws / ".artifacts")
    app = TestClient(create_app(str(ws / ".artifacts")))
    for url in (
        "/",
        "/team/proj",
        "/team/proj/raw-data",
        "/team/proj/raw-data/v1",
        "/team/proj/raw-data/v1/files/data.csv",
        "/team/proj/raw-data/v1/raw/data.csv",
        "/team/proj/raw-data/~diff",
        "/team/proj/model/v0/~lineage",
    ):
        assert app.get(url).status_code == 200, url
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert app.request(method, url).status_code == 405
    assert _listing(ws / ".artifacts") == before


def test_a_large_directory_is_shown_a_page_at_a_time(ws: Path) -> None:
    names = [f"f{i:05d}.txt" for i in range(2500)]
    with artifacts.init() as run:
        logged(run, "big", {f"d/{name}": name for name in names})
    client = TestClient(create_app(str(ws / ".artifacts")))
    seen: list[str] = []
    url = "/team/proj/big/v0/files/d"
    while url:
        page = client.get(url.replace("&amp;", "&")).text
        seen += re.findall(r'class="entry" href="[^"]*">([^<]*)</a>', page)
        found = re.search(r'id="next" href="([^"]*)"', page)
        url = found.group(1) if found else ""
    assert seen == names


def test_images_show_inline_and_nothing_else_does(ws: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 20
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    with artifacts.init() as run:
        logged(run, "pics", {"a.png": png, "b.svg": svg})
    client = TestClient(create_app(str(ws / ".artifacts")))
    assert (
        'src="/team/proj/pics/v0/raw/a.png?inline=1"'
        in client.get("/team/proj/pics/v0/files/a.png").text
    )
    inline = client.get("/team/proj/pics/v0/raw/a.png?inline=1")
    assert inline.headers["content-type"] == "image/png" and inline.content == png
    forced = client.get("/team/proj/pics/v0/raw/b.svg?inline=1")
    assert forced.headers["content-type"] == "application/octet-stream"
    assert forced.headers["content-disposition"].startswith("attachment")


def test_without_the_ui_extra_the_command_says_how_to_install_it(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    assert main(["ui"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "artifacts: error: artifacts ui needs the ui extra: pip install 'artifacts[ui]'"
    )


def test_the_server_listens_on_localhost_unless_told(ws: Path) -> None:
    from artifacts.cli import build_parser

    assert build_parser().parse_args(["ui"]).host == "127.0.0.1"
    assert build_parser().parse_args(["ui", "--host", "0.0.0.0"]).host == "0.0.0.0"
    assert os.path.isdir(ws / ".artifacts")


def _older_version(ws: Path, name: str) -> None:
    """Make ``name``'s latest version as a store written before file counts were
    recorded has it: the same commit without ``files``."""
    repo = Repository.open(str(ws / ".artifacts"))
    ref = f"team/proj/artifacts/{name}/latest"
    old = repo.refs.read(ref)
    commit = repo.objects.get_commit(old)
    meta = {k: v for k, v in commit.meta.items() if k != "files"}
    with repo.writing():
        repo.refs.set_if_equals(
            ref, old, repo.objects.put(Commit(commit.tree, commit.parents, meta))
        )


def test_the_versions_page_counts_each_versions_files(ws: Path, tiny_pages: None) -> None:
    write("refs/one.txt", "1")
    write("refs/two.txt", "2")
    with artifacts.init() as run:
        logged(run, "counted", {"a/b/c.txt": "1", "a/d.txt": "2", "e.txt": "3"})  # nested
        big = {f"big/f{i:04d}.txt": str(i) for i in range(300)}  # pages of a few entries
        logged(run, "counted", {**big, "x/y.txt": "y"})
        draft = run.use_artifact("counted:latest").new_draft()
        for i in range(10):
            draft.remove(f"big/f{i:04d}.txt")
        draft.add_reference(f"file://{os.path.abspath('refs')}", name="refs")  # two entries
        run.log_artifact(draft)
    _older_version(ws, "counted")  # v2 counted from its trees
    client = TestClient(create_app(str(ws / ".artifacts")))
    page = client.get("/team/proj/counted").text
    counts = re.findall(r'class="num files">([\d,]+)<', page)
    assert counts == ["293", "301", "3"]  # newest first
    assert [v.file_count for v in artifacts.Api().artifact("counted:v0").collection.versions()] == [
        293,
        301,
        3,
    ]


def _pages(client: TestClient, url: str, link: str, item: str) -> list[list[str]]:
    """The items of each page from ``url`` on, following the links ``id=link``."""
    found = []
    while url:
        page = client.get(url.replace("&amp;", "&")).text
        found.append(re.findall(rf'class="{item}" href="[^"]*">([^<]*)</a>', page))
        url = (re.search(rf'id="{link}" href="([^"]*)"', page) or [None, ""])[1]
    return found


def _last_url(client: TestClient, url: str) -> str:
    while found := re.search(r'id="next" href="([^"]*)"', client.get(url).text):
        url = found.group(1).replace("&amp;", "&")
    return url


def test_a_directory_pages_back_to_its_first_page(
    ws: Path, tiny_pages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_app, "PAGE", 7)
    names = [f"f{i:03d}.txt" for i in range(40)]  # pages of a few entries in the store too
    with artifacts.init() as run:
        logged(run, "paged", {f"d/{name}": name for name in names})
    client = TestClient(create_app(str(ws / ".artifacts")))
    first = "/team/proj/paged/v0/files/d"
    forward = _pages(client, first, "next", "entry")
    assert [n for page in forward for n in page] == names and len(forward[0]) == 7
    back = _pages(client, _last_url(client, first), "prev", "entry")
    assert back == forward[::-1]  # the same pages, as a link to any of them shows them
    middle = client.get(f"{first}?after=f013.txt").text
    assert f'id="first" href="{first}"' in middle
    assert 'id="prev" href="/team/proj/paged/v0/files/d?before=f014.txt"' in middle
    assert 'id="first"' not in client.get(first).text
    assert 'id="prev"' not in client.get(first).text


def test_the_versions_page_pages_forward_and_back(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_app, "VERSIONS_PAGE", 3)
    with artifacts.init() as run:
        for i in range(8):
            logged(run, "many", {"x.txt": str(i)})
    client = TestClient(create_app(str(ws / ".artifacts")))
    first = "/team/proj/many"
    forward = _pages(client, first, "next", "version")
    assert forward == [["v7", "v6", "v5"], ["v4", "v3", "v2"], ["v1", "v0"]]
    assert _pages(client, _last_url(client, first), "prev", "version") == forward[::-1]
    middle = client.get(f"{first}?after=v5").text
    assert f'id="first" href="{first}"' in middle and "?before=v4" in middle
    assert "diff with v1" in middle  # the last row's diff reaches past the page
    assert client.get(f"{first}?after=five").status_code == 400


def test_previews_of_files_no_parser_takes_show_as_text_or_nothing(ws: Path) -> None:
    """A CSV with a field past the csv module's limit, JSON nested past the recursion
    limit: each page opens (200), showing the file as text, never a 500."""
    long_field = "a,b\n" + "x" * 200_000 + ",1\n"
    deep = "[" * 100_000 + "]" * 100_000
    with artifacts.init() as run:
        logged(run, "odd", {"long.csv": long_field, "deep.json": deep, "open.json": "{" * 50_000})
    client = TestClient(create_app(str(ws / ".artifacts")), raise_server_exceptions=False)
    for name, shown in (("long.csv", "xxxxxxxx"), ("deep.json", "[[[["), ("open.json", "{{{{")):
        page = client.get(f"/team/proj/odd/v0/files/{name}")
        assert page.status_code == 200, (name, page.text[-300:])
        assert shown in page.text


def test_control_and_direction_characters_show_as_escapes(ws: Path) -> None:
    """A right-to-left override makes "\\u202etxt.exe" read as "exe.txt"; NUL and ESC show
    as nothing: each is shown as its escape, in names, descriptions and previews, and the
    links still lead to the file."""
    spoof = "\u202etxt.exe"
    with artifacts.init(name="run\u202eevil") as run:
        logged(
            run,
            "ctl",
            {spoof: "a\x1b[31mb\u2066c\n", "plain.txt": "tab\tnew\nline\n"},
            description="nul\x00 bell\x07 \u202edesc",
        )
    client = TestClient(create_app(str(ws / ".artifacts")))
    pages = [client.get(u) for u in ("/team/proj/ctl", "/team/proj/ctl/v0")]
    pages.append(client.get("/team/proj/ctl/v0/files/" + quote(spoof)))
    pages.append(client.get("/team/proj/ctl/v0/~lineage"))
    for page in pages:
        assert page.status_code == 200
        for hidden in ("\u202e", "\u2066", "\x00", "\x07", "\x1b"):
            assert hidden not in page.text, (page.url, hidden)
    assert "nul\\u0000 bell\\u0007 \\u202edesc" in pages[0].text
    assert "\\u202etxt.exe" in pages[1].text and "run\\u202eevil" in pages[3].text
    assert "a\\u001b[31mb\\u2066c" in pages[2].text
    assert "tab\tnew\nline" in client.get("/team/proj/ctl/v0/files/plain.txt").text


def test_a_parquet_preview_reads_only_its_first_rows(ws: Path) -> None:
    """Not the whole table: a 4 MiB parquet file can hold billions of compressed rows. A
    file whose second row group is unreadable still shows the rows of its first."""
    import io

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"n": list(range(2000)), "s": [f"row{i}" for i in range(2000)]})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=1000, compression="none", use_dictionary=False)
    data = bytearray(out.getvalue())
    second = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(1).column(0)
    data[second.data_page_offset : second.data_page_offset + 40] = b"\xff" * 40
    with artifacts.init() as run:
        logged(run, "pq", {"t.parquet": bytes(data)})
    client = TestClient(create_app(str(ws / ".artifacts")))
    page = client.get("/team/proj/pq/v0/files/t.parquet").text
    assert "<td>row49</td>" in page and "<td>row50</td>" not in page
