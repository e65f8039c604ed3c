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

PACKAGE = Path(__file__).resolve().parent.parent / "mirror"
HEAVY = ("boto3", "botocore", "prometheus_client", "feedparser", "markdown_it", "ruamel")


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
    script = (
        "import json, sys\n"
        "from mirror.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    heavy = sorted({m.split(".")[0] for m in loaded} & set(HEAVY))
    assert heavy == [], f"mirror {' '.join(argv)} imports {heavy}"
