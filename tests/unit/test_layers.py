"""Layering rules, read from the source with `ast` (nothing is imported or run): which modules
may talk HTTP, what the mirror may import, and that every error code raised is in the table.

Each rule is a list of modules, so tightening one is adding a line; a module a rule cannot
hold for yet is listed in its `exempt`, by name, rather than left out of the pattern."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.errors import CODES

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ImportRule:
    """Modules matching `modules` (globs under the repository root), except `exempt`, import
    nothing that is, or is inside, one of `forbidden`."""

    name: str
    modules: tuple[str, ...]
    forbidden: tuple[str, ...]
    exempt: tuple[str, ...] = ()


RULES = (
    ImportRule("parsing, settings and storage know no HTTP library",
               modules=("registry/reference.py", "registry/ranges.py", "registry/mediatypes.py",
                        "registry/config.py", "registry/storage/**/*.py"),
               forbidden=("aiohttp", "yarl")),
    ImportRule("the mirror does not depend on the command-line tools",
               modules=("mirror/**/*.py",),
               forbidden=("registry.tools",)),
)

CODE_SCOPE = ("registry/**/*.py", "mirror/**/*.py")  # tests may build unknown codes on purpose
CODE_LIKE = re.compile(r"[A-Z][A-Z0-9_]*")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` imports, relative imports made absolute; `from a import b` counts
    as both `a` and `a.b`, since `b` may be a module."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def matching(patterns: tuple[str, ...]) -> list[Path]:
    paths = sorted({path for pattern in patterns for path in ROOT.glob(pattern)})
    assert paths, f"no module matches {patterns}: a rule that checks nothing would pass forever"
    return paths


def violations(rule: ImportRule) -> Iterator[str]:
    exempt = {ROOT / name for name in rule.exempt}
    for path in matching(rule.modules):
        if path in exempt:
            continue
        found = imports(path.read_text(), module_name(path), path.name == "__init__.py")
        for name in sorted(found):
            if any(name == bad or name.startswith(bad + ".") for bad in rule.forbidden):
                yield f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_import_rule(rule: ImportRule) -> None:
    assert list(violations(rule)) == []


def raised_codes(source: str) -> Iterator[tuple[int, str]]:
    """(line, code) of every `RegistryError("CODE", ...)` or `RegistryError(code="CODE")`.
    Only upper-case literals are codes; a sentence passed first is a message, not a code."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if called != "RegistryError":
            continue
        candidates = [*node.args[:1], *(kw.value for kw in node.keywords if kw.arg == "code")]
        for arg in candidates:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and CODE_LIKE.fullmatch(arg.value):
                yield node.lineno, arg.value


def test_every_raised_error_code_is_in_the_table() -> None:
    sources = {path: path.read_text() for path in matching(CODE_SCOPE)}
    unknown = [f"{path.relative_to(ROOT)}:{line}: {code}"
               for path, source in sources.items() if "RegistryError" in source  # parsing all takes seconds
               for line, code in raised_codes(source)
               if code not in CODES]
    assert unknown == []


def test_the_import_check_sees_absolute_relative_and_nested_imports() -> None:
    source = ("import aiohttp.web\nfrom ..tools import progress\nfrom . import fills\n"
              "def f() -> None:\n    from yarl import URL\n")
    found = imports(source, "mirror.storage.blobs")
    assert {"aiohttp.web", "mirror.tools", "mirror.tools.progress", "mirror.storage.fills", "yarl"} <= found
    assert "registry.tools.progress" in imports("from ..tools.progress import Progress", "registry.storage.gc")
    assert "registry.errors" in imports("from .errors import X", "registry", is_package=True)
    rule = ImportRule("t", ("registry/tools/progress.py",), forbidden=("tqdm",))
    assert list(violations(rule)) == [f"registry/tools/progress.py imports {name}" for name in ("tqdm", "tqdm.tqdm")]


def test_the_code_check_finds_codes_not_messages() -> None:
    source = ('raise RegistryError("NO_SUCH_CODE", "x")\nerrors.RegistryError(code="BLOB_UNKNOWN")\n'
              'RegistryError("a message for a typed error")\nRegistryError(code)\n')
    assert list(raised_codes(source)) == [(1, "NO_SUCH_CODE"), (2, "BLOB_UNKNOWN")]
