"""The import directions of docs/architecture.md, read from the source (an AST check).

- ``core/`` (vocabulary and contracts) imports neither Django nor torch, nor any other layer
  (the standard library, and NumPy for CoPL's cold-start arithmetic).
- ``apps/`` and ``platform/`` (the web side) import ``workers/`` (the torch side) only inside
  a function: a Celery task, a management command, a job started from the web never pulls torch
  into a web process.
- ``workers/`` uses from ``apps/`` only the ORM contract: ``models``, ``selectors``, ``services``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import project_env

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("apps", "attune", "bench", "core", "tests", "workers")
HEAVY = {
    "accelerate", "celery", "datasets", "django", "drf_spectacular", "peft",
    "rest_framework", "safetensors", "sentence_transformers", "torch", "transformers", "trl",
}  # fmt: skip
ORM_CONTRACT = {"models", "selectors", "services"}


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    module: str  # the full dotted name imported (``from a.b import c`` gives ``a.b.c`` too)
    lazy: bool  # inside a function body

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line} imports {self.module}"


def _imports(file: Path) -> Iterator[Import]:
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))

    def visit(node: ast.AST, lazy: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(file, child.lineno, alias.name, lazy)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield Import(file, child.lineno, child.module, lazy)
                for alias in child.names:
                    yield Import(file, child.lineno, f"{child.module}.{alias.name}", lazy)
            yield from visit(child, inner)

    yield from visit(tree, False)


def _sources(*folders: str) -> list[Path]:
    files = [f for folder in folders for f in (ROOT / folder).rglob("*.py")]
    assert files, folders
    return sorted(files)


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def test_core_imports_neither_django_nor_torch_nor_another_layer():
    bad = [
        str(i)
        for f in _sources("core")
        for i in _imports(f)
        if _top(i.module) in HEAVY or (_top(i.module) in LAYERS and _top(i.module) != "core")
    ]
    assert not bad, "core/ must stay pure:\n" + "\n".join(bad)


def test_the_web_side_imports_workers_only_inside_functions():
    bad = [
        str(i)
        for f in _sources("apps", "platform")
        for i in _imports(f)
        if _top(i.module) == "workers" and not i.lazy
    ]
    assert not bad, "apps/ and platform/ import workers/ lazily only:\n" + "\n".join(bad)


def _orm_contract(module: str) -> bool:
    """Whether ``module`` (an ``apps.…`` import) is an app's models, selectors or services (or
    a name inside one)."""
    parts = module.split(".")
    return len(parts) >= 3 and parts[2] in ORM_CONTRACT


def test_workers_use_only_the_orm_contract_of_apps():
    bad = []
    for file in _sources("workers"):
        imports = list(_imports(file))
        for i in imports:
            if _top(i.module) != "apps":
                continue
            # ``from apps.x import selectors`` yields ``apps.x`` and ``apps.x.selectors``
            if len(i.module.split(".")) == 2 and any(
                j.line == i.line and j.module.startswith(i.module + ".") for j in imports
            ):
                continue
            if not _orm_contract(i.module):
                bad.append(str(i))
    assert not bad, "workers/ may use apps' models, selectors and services only:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("apps.collab.selectors", True),
        ("apps.collab.selectors.user_embedding", True),
        ("apps.accounts.models.User", True),
        ("apps.collab.store", False),
        ("apps.common.api", False),
        ("apps.collab", False),
    ],
)
def test_the_orm_contract_rule_itself(module, allowed):
    assert _orm_contract(module) is allowed


def test_importing_all_of_core_loads_neither_django_nor_torch():
    modules = sorted(
        ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for f in _sources("core")
    )
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in ('django', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_a_web_process_that_imports_every_app_module_loads_no_workers_module():
    """The runtime side of rule 2: every module of apps/ (tasks and commands included) and the
    URL conf import in a fresh Django process with neither ``workers`` nor torch loaded (so
    gunicorn never gets the torch side's process settings, such as ``OMP_WAIT_POLICY``)."""
    modules = sorted(
        ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for f in _sources("apps")
    )
    code = (
        "import django, importlib, sys\ndjango.setup()\nimport attune.urls\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'workers', 'torch'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=project_env(), capture_output=True,
        text=True, timeout=120, check=True,
    )  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
