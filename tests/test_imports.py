"""Imports run one way: geometry ← losses, datasets ← models ← systems ← tools ← the tools'
command lines. A forbidden import anywhere in a package (lazy ones inside functions too)
fails here, naming the file and the module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import ROOT

# The project's top-level modules and packages; anything else is a third-party import.
PROJECT = {"geometry", "losses", "datasets", "models", "systems", "tools", "utils", "options",
           "config"}

# What each part may import from the project (module-name prefixes). The dataset registry
# and the options schema are leaves that even the low layers may read.
LEAVES = ("datasets.registry", "options", "utils.errors")
ALLOWED: dict[str, tuple[str, ...]] = {
    "utils.errors": (),
    "datasets.registry": ("utils.errors",),
    "options": ("datasets.registry",),
    "geometry": ("geometry",),
    "utils": ("utils", "geometry", *LEAVES),
    "losses": ("losses", "geometry", *LEAVES),
    "datasets": ("datasets", "geometry", "utils", *LEAVES),
    "models": ("models", "utils", *LEAVES),
    "systems": ("systems", "models", "losses", "datasets", "geometry", "utils", *LEAVES),
    "tools": ("tools", "systems", "models", "losses", "datasets", "geometry", "utils",
              *LEAVES),
    # config.py builds the command-line parsers: it sits with the tools, above the systems
    "config": ("options", "datasets.registry", "utils"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PROJECT)
    return found


def _rule(module: str) -> tuple[str, tuple[str, ...]]:
    """The most specific ALLOWED entry for ``module``."""
    keys = [k for k in ALLOWED if module == k or module.startswith(k + ".")]
    key = max(keys, key=len)
    return key, ALLOWED[key]


PACKAGES = ("geometry", "losses", "datasets", "models", "systems", "tools", "utils")
SOURCES = [ROOT / "options.py", ROOT / "config.py",
           *sorted(p for name in PACKAGES for p in (ROOT / name).glob("**/*.py"))]


@pytest.mark.parametrize("path", SOURCES, ids=_module_name)
def test_imports_run_one_way(path: Path) -> None:
    module = _module_name(path)
    key, allowed = _rule(module)
    bad = sorted(m for m in _project_imports(path)
                 if not any(m == a or m.startswith(a + ".") for a in allowed))
    assert not bad, f"{path.relative_to(ROOT)} ({key}) imports {bad}; allowed: {allowed}"


def test_the_rule_catches_a_wrong_way_import(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def f():\n    from systems import build_model\n")
    assert _project_imports(wrong) == {"systems"}
    assert not any(a == "systems" or "systems".startswith(a + ".")
                   for a in _rule("models.depth_net")[1])
