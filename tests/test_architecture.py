"""The layout rules of docs/adr/0013, checked on the source itself.

Each rule is a "one truth" the project depends on: one python-tuf `Updater`
factory (so every reader view has the same caps), one error tree, a trust
layer that decides from bytes alone, and commands that import only what
they need.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.cli.extras import PUBLISH_MODULES

PACKAGE = Path(__file__).resolve().parent.parent / "mirror"
HEAVY = ("boto3", "botocore", *PUBLISH_MODULES)
"""What a reader's command must not load: the publish extra (docs/adr/0017), and S3."""
READER_COMMAND_MODULES = ("fetch", "verify", "read", "trust", "tuf_client", "help", "export_reader")
"""`mirror.commands` modules of the reader-only install (fetch, verify, extract, read, trust,
tuf-client, help, completion, keys export-reader)."""


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in PACKAGE.rglob("*.py")]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def test_python_tuf_updater_is_built_in_exactly_one_place() -> None:
    calls = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _name(node.func) == "Updater"
    ]
    assert len(calls) == 1, calls
    assert calls[0].startswith("client/view.py"), calls


def test_no_error_class_is_defined_outside_errors_py() -> None:
    found = []
    for path, tree in _modules():
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [_name(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception", "Failure")) for b in bases):
                    found.append(f"{path.relative_to(PACKAGE)}: class {node.name}({bases})")
    assert found == []


IO_MODULES = {
    "os",
    "shutil",
    "pathlib",
    "io",
    "socket",
    "tempfile",
    "glob",
    "subprocess",
    "httpx",
    "httpcore",
    "urllib.request",
    "mirror.fsutil",
    "platformdirs",
}


def test_trust_layer_does_no_io() -> None:
    """mirror/trust/ decides from bytes and values: no file, folder or network access."""
    offences = []
    for path in (PACKAGE / "trust").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.module == "mirror":
                    names = [f"mirror.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Call) and _name(node.func) in ("open", "read_bytes"):
                offences.append(f"{path.name}:{node.lineno}: calls {_name(node.func)}")
                continue
            else:
                continue
            offences += [
                f"{path.name}:{node.lineno}: imports {n}" for n in names if n in IO_MODULES
            ]
    assert offences == []


@pytest.mark.parametrize("argv", [["--version"], ["verify", "--help"], ["fetch", "--help"]])
def test_light_commands_import_no_heavy_library(argv: list[str]) -> None:
    script = f"from mirror.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    heavy = _loaded_after(script)
    assert heavy == [], f"mirror {' '.join(argv)} imports {heavy}"


def _loaded_after(script: str) -> list[str]:
    """The heavy top-level packages loaded once ``script`` ran."""
    script += "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    return sorted({m.split(".")[0] for m in loaded} & set(HEAVY))


WITHOUT_PUBLISH_EXTRA = f"""\
import importlib.abc, sys
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in {sorted(PUBLISH_MODULES)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Absent())
"""
"""A script prefix that makes this venv a reader-only install: the extra's imports fail.

(The base packages' own optional imports, such as securesystemslib trying
boto3, still see them absent and carry on, as on a reader's machine.)
"""


def _handler_modules() -> set[str]:
    """Every `mirror.commands` module a command of the parser names."""
    from mirror.cli.parser import _subcommands, build_parser

    found = set()
    for parser in [build_parser(), *_subcommands(build_parser())]:
        handler = parser.get_default("handler")
        if isinstance(handler, str):
            found.add(handler.partition(":")[0])
    return found


def test_each_command_is_a_reader_command_or_needs_the_publish_extra() -> None:
    """Reader modules import without the extra; every other one fails at once, naming it.

    A new command must be put on one side: importing it half-way on a
    reader's machine and failing later would hide which extra is missing.
    """
    modules = sorted(_handler_modules())
    assert set(READER_COMMAND_MODULES) <= set(modules)
    script = WITHOUT_PUBLISH_EXTRA + (
        "import importlib, json\n"
        "outcome = {}\n"
        f"for module in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module('mirror.commands.' + module)\n"
        "        outcome[module] = None\n"
        "    except ModuleNotFoundError as error:\n"
        "        outcome[module] = error.name\n"
        "print(json.dumps(outcome))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    outcome: dict[str, str | None] = json.loads(done.stdout)
    readers = {m for m, missing in outcome.items() if missing is None}
    assert readers == set(READER_COMMAND_MODULES), outcome
    for module, missing in outcome.items():
        assert missing is None or missing.partition(".")[0] in PUBLISH_MODULES, (module, missing)
