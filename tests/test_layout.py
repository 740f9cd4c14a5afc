"""The rooms stay small and keep their private names to themselves (README, "Layout and
dependency rules"); which module may import which is import-linter's (`lint-imports`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("backoffice", "sales", "refunds")
# "About 400 lines": a room a newcomer can read in one sitting.
MAX_LINES = 420
# Not a room to split: settings is a flat list of configured values, each with its comment.
NOT_YET = ("backoffice/settings.py",)


def _modules() -> list[Path]:
    return sorted(
        path for app in APPS for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    )


def _waived(path: Path) -> bool:
    return str(path.relative_to(ROOT)).startswith(NOT_YET)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_is_over_about_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if not _waived(p)
            if (n := _lines(p)) > MAX_LINES}
    assert long == {}, f"split these by what they do: {long}"


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            # Names only: a module may be private to its package (the commands' helpers
            # live in `_common` so that Django does not list them as a command).
            where = "." * node.level + (node.module or "")
            found += [f"{where}:{alias.name} (line {node.lineno})"
                      for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_no_private_name_is_imported_from_another_module():
    private = {str(p.relative_to(ROOT)): names for p in _modules() if not _waived(p)
               if (names := _private_imports(p))}
    assert private == {}, f"make what is shared public and name it for what it does: {private}"


def test_the_checks_see_what_they_look_for(tmp_path):
    """Both checks fail on a module that breaks them."""
    module = tmp_path / "room.py"
    module.write_text("from .refund import _plan, refund_row\nfrom . import _case\n"
                      + "x = 1\n" * MAX_LINES)
    assert _private_imports(module) == [".refund:_plan (line 1)", ".:_case (line 2)"]
    assert _lines(module) == MAX_LINES + 2


def _module_level_imports(path: Path) -> list[str]:
    """The modules a file imports when it loads (not inside a function)."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def test_tasks_and_services_import_each_other_one_way():
    """Tasks import the services inside their bodies; services reach the tasks only
    through refunds/services/queue.py, lazily: no cycle at load time (import-linter cannot
    tell a function's import from a module's, so this test does)."""
    tasks = _module_level_imports(ROOT / "refunds" / "tasks.py")
    assert not [m for m in tasks if "services" in m], tasks
    for path in (ROOT / "refunds" / "services").glob("*.py"):
        loaded = _module_level_imports(path)
        assert not [m for m in loaded if m.endswith("tasks")], (path.name, loaded)
        if path.name != "queue.py":  # not even inside a function
            assert not re.search(r"^\s*(from|import)\s+[.\w]*tasks\b", path.read_text(),
                                 re.M), path.name
