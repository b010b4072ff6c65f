"""cas.keys owns the store layout: its keys parse back, and no other module spells one."""

from __future__ import annotations

import ast
from pathlib import Path

from cas import keys
from cas.objects import object_id

ROOT = Path(__file__).resolve().parent.parent
# What a hand-built key looks like in source: a literal (or an f-string's first part)
# starting with a top-level name of docs/format.md's layout, or naming a pack file.
KEY_STARTS = ("objects/", "blobs/", "packs/", "refs/", "fossils/", "tmp/", "config.json")
KEY_ENDS = (".pack", ".idx")


def hand_built_keys(source: str) -> list[str]:
    """The string literals of ``source``, docstrings aside, that spell a storage key."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [p.value for p in node.values if isinstance(p, ast.Constant)]
        elif isinstance(node, ast.Constant) and id(node) not in docstrings:
            parts = [node.value]
        else:
            continue
        for part in parts:
            if isinstance(part, str) and (part.startswith(KEY_STARTS) or part.endswith(KEY_ENDS)):
                found.append(f"line {node.lineno}: {part!r}")
    return found


def test_the_checker_finds_each_form_of_a_hand_built_key() -> None:
    for source in (
        'key = f"packs/{name}.pack"',
        "key = 'objects/' + hex_id",
        'storage.list("refs/")',
        'name + ".idx"',
        'storage.get("config.json")',
    ):
        assert hand_built_keys(source), source
    assert hand_built_keys('"""Keys such as ``packs/<name>.pack``."""\nx = "pack"') == []


def test_no_module_but_cas_keys_builds_a_storage_key() -> None:
    files = [
        path
        for package in ("cas", "remotes")
        for path in sorted((ROOT / package).rglob("*.py"))
        # The backends are below the layout: keys are opaque to them.
        if path != ROOT / "cas" / "keys.py" and "storage" not in path.parts
    ]
    assert len(files) >= 15
    problems = {
        str(path.relative_to(ROOT)): found
        for path in files
        if (found := hand_built_keys(path.read_text(encoding="utf-8")))
    }
    assert problems == {}


def test_every_key_parses_back_and_no_other_does() -> None:
    some_id = object_id(b"an object")
    for key in (keys.loose_key(some_id), keys.content_key(some_id)):
        assert keys.parse_loose_key(key) == some_id
    name = "ab" * 32
    assert keys.parse_index_key(keys.index_key(name)) == name
    assert keys.parse_pack_key(keys.pack_key(name)) == name
    assert keys.pack_key(name) == f"packs/{name}.pack"  # docs/format.md, section 5
    assert keys.parse_ref_key(keys.ref_key("team/proj/x")) == "team/proj/x"
    hex_id = some_id.hex()
    for other in (
        f"packs/{hex_id[:2]}/{hex_id[2:]}",  # not a loose prefix
        f"objects/{hex_id[:3]}/{hex_id[3:]}",  # fanned out wrongly
        f"objects/{hex_id[:2]}/{hex_id[2:-2]}zz",  # not hex
        "objects/ab",
    ):
        assert keys.parse_loose_key(other) is None, other
    for other in (keys.pack_key(name), "packs/x.idx.tmp", "refs/packs/x.idx"):
        assert keys.parse_index_key(other) is None, other
