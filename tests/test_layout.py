"""The package's architecture, as the folders promise it (issue 12).

The library (everything under src/ai2human except runner/ and bench/) is what notebooks, the chat
app and Kaggle kernels import; it must work without the runner and the benchmark, so it never
imports them, not even inside a function. And no module grows past 300 lines: past that it does
more than one job and should be split along its seams.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ai2human"
NOT_LIBRARY = ("runner", "bench")
MAX_LINES = 300


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def library_modules() -> list[Path]:
    return [p for p in modules() if p.relative_to(PACKAGE).parts[0] not in NOT_LIBRARY]


def module_name(path: Path) -> str:
    parts = ("ai2human", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (inside functions too), relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            # `from ai2human import runner` imports the subpackage by its attribute name
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden(name: str) -> bool:
    return any(name == f"ai2human.{p}" or name.startswith(f"ai2human.{p}.") for p in NOT_LIBRARY)


def test_the_import_scanner_sees_nested_and_relative_imports(tmp_path, monkeypatch):
    fake = tmp_path / "ai2human"
    (fake / "eda").mkdir(parents=True)
    source = fake / "eda" / "x.py"
    source.write_text(
        "def f():\n    from ..runner import params\n    import ai2human.bench.cli\n"
        "from ai2human import bench\nfrom . import style\n"
    )
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    names = imported_modules(source)
    assert {"ai2human.runner.params", "ai2human.bench.cli", "ai2human.bench", "ai2human.eda.style"} <= names
    assert forbidden("ai2human.runner.params") and forbidden("ai2human.bench") and not forbidden("ai2human.rundir")


def test_the_library_never_imports_the_runner_or_the_benchmark():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in imported_modules(path) if forbidden(n))
        for path in library_modules()
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"library modules importing the runner or the benchmark: {offenders}"


def test_no_module_is_over_300_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines()) for p in modules()}
    over = {name: n for name, n in sorted(sizes.items(), key=lambda kv: -kv[1]) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them along their seams): {over}"


@pytest.mark.parametrize("sub", ["data", "models", "eda", "pairs", "train", "evaluate", "app", "runner", "runner/kaggle", "bench"])
def test_each_part_is_a_folder(sub):
    assert (PACKAGE / sub / "__init__.py").is_file()


@pytest.mark.slow
def test_the_kaggle_wheel_holds_the_library_only(tmp_path, monkeypatch):
    """Kaggle kernels install the wheel `--kaggle` uploads: the library, never the runner or the
    benchmark (they drive and measure runs from the user's machine)."""
    import zipfile

    from ai2human.runner.kaggle import wheel as kaggle_wheel

    monkeypatch.setenv("AI2HUMAN_CACHE", str(tmp_path))
    path, _ = kaggle_wheel.build_wheel()
    names = zipfile.ZipFile(path).namelist()
    modules = [n for n in names if n.startswith("ai2human/") and n.endswith(".py")]
    assert "ai2human/rundir.py" in modules and "ai2human/train/recipe.py" in modules
    assert "ai2human/evaluate/yardstick.py" in modules and "ai2human/app/page.py" in modules
    shipped = [n for n in modules if n.split("/")[1] in ("runner", "bench")]
    assert not shipped, shipped
