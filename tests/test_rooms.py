"""Rooms hold what their names say (issue 12, item 5): accounts, storage and the HTTP routes load no engine
module beyond the errors a person reads, and nothing under auth/, queueing/ or storage/ imports web."""
from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The worker process's entry point (`python -m queueing.worker`) composes the rooms as app.py does, and sets up
# its log handler with web.logs; nothing else under the lower rooms may import web.
ENTRY_POINTS = {"queueing/worker.py": {"web.logs", "web.logs.configure_logging"}}


def imported_modules(path: pathlib.Path) -> set[str]:
    """The absolute module names `path` imports anywhere in it (at the top, in functions, under TYPE_CHECKING)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_accounts_storage_and_web_load_no_engine_module_but_the_errors():
    script = ("import auth, storage, web, json, sys; "
              "print(json.dumps({'pipelines': sorted(m for m in sys.modules if m.split('.')[0] == 'pipelines'), "
              "'heavy': sorted(m for m in ('torch', 'diffusers', 'transformers', 'gradio', 'stripe', 'authlib') "
              "if m in sys.modules)}))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    assert loaded == {"pipelines": ["pipelines", "pipelines.errors"], "heavy": []}


def test_the_errors_module_imports_nothing_of_the_project():
    assert {name for name in imported_modules(ROOT / "pipelines" / "errors.py")
            if name.split(".")[0] in {"pipelines", "auth", "queueing", "storage", "web", "ui", "configs"}} == set()


def test_no_lower_room_imports_web():
    found = {}
    for room in ("auth", "queueing", "storage"):
        for path in sorted((ROOT / room).rglob("*.py")):
            named = path.relative_to(ROOT).as_posix()
            web = {name for name in imported_modules(path) if name == "web" or name.startswith("web.")}
            web -= ENTRY_POINTS.get(named, set())
            if web:
                found[named] = sorted(web)
    assert found == {}


def test_the_scan_sees_an_import_of_web_inside_a_function(tmp_path):
    path = tmp_path / "sneaky.py"
    path.write_text("def f():\n    from web.ops import install_ops_routes\n    import web\n")
    assert {"web", "web.ops", "web.ops.install_ops_routes"} <= imported_modules(path)
