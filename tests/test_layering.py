"""The house as the README's Layout draws it: layers import only downward, every file listed."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "brickwork"
LAYERS = [
    ("_version", "errors", "files"),
    ("registry",),
    ("shapes",),
    ("layers",),
    ("blocks",),
    ("models",),
    ("spec",),
    ("inspect",),
    ("train",),
    ("exporting",),
    ("cli",),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
MODULES = sorted(
    p
    for p in PACKAGE.rglob("*.py")
    if p.relative_to(PACKAGE).parts[0] not in ("__init__.py", "__main__.py")
)


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name == "brickwork" or name.startswith("brickwork.")]


def test_every_part_of_the_package_has_a_layer() -> None:
    assert {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES} == set(RANK)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_only_downward(path: Path) -> None:
    layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for name in _imports(path):
        if layer == "cli":
            continue  # the top: it may import anything, the package included
        assert name != "brickwork", f"{path.name} imports the top-level package"
        target = name.split(".")[1]
        assert (
            target == layer or RANK[target] < RANK[layer] or (RANK[target] == RANK[layer] == 0)
        ), f"{path.relative_to(PACKAGE)} ({layer}) imports {name}, a layer above it"


def test_the_readme_layout_lists_every_file() -> None:
    layout = re.search(r"## Layout\n.*?```\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert layout is not None
    listed = set(re.findall(r"^\s+(\w+\.py)\b", layout.group(1), re.M))
    for path in MODULES:
        if path.name == "__init__.py" and path.parent.name != "cli":
            continue  # a package's front door, named by its folder
        assert path.name in listed, f"README's Layout does not list {path.relative_to(PACKAGE)}"
