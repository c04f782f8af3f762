"""The code's shape: imports point one way, and constants shared with dbt agree.

Imports are read from the source (every `import`, at module level or inside a function), so
a late import cannot hide a dependency. The layers, bottom up:

- foundation: `pipeline` (config, warehouse access, logs, the step model);
- features: `ingest`, `health`, `watchlist`, `api`, on the foundation;
- assembly: `nightly` (the night's steps) and the command line `runner`, on top.
"""

from __future__ import annotations

import ast
import graphlib
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from pipeline import names
from pipeline.config import PROJECT_ROOT

FOUNDATION = {"pipeline"}
FEATURES = {"ingest", "health", "watchlist", "api"}
ASSEMBLY = {"nightly", "runner"}
PROJECT = FOUNDATION | FEATURES | ASSEMBLY


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Project modules that `path` imports."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT}


def import_graph() -> dict[str, set[str]]:
    files = [PROJECT_ROOT / "runner.py"] + [
        p for top in sorted(PROJECT - {"runner"}) for p in (PROJECT_ROOT / top).rglob("*.py")
    ]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        graph[module]  # every module is a node, imported or not
        for name in _imports(path, module):
            # `from pkg import mod` names a module; `from mod import func` names its module
            target = name if name in modules else name.rpartition(".")[0]
            if target in modules and target != module:
                graph[module].add(target)
    return dict(graph)


def edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [(a, b) for a, targets in graph.items() for b in sorted(targets)]


def layer(module: str) -> str:
    top = module.split(".")[0]
    return "foundation" if top in FOUNDATION else "feature" if top in FEATURES else "assembly"


GRAPH = import_graph()


def test_the_graph_covers_the_code():
    assert {"pipeline.config", "nightly.steps", "ingest.goldsky_files", "api.app", "runner"} <= set(GRAPH)
    assert len(edges(GRAPH)) > 50


def test_the_foundation_imports_no_feature_and_no_assembly():
    wrong = [(a, b) for a, b in edges(GRAPH) if layer(a) == "foundation" and layer(b) != "foundation"]
    assert wrong == []


def test_features_never_import_the_assembly():
    wrong = [(a, b) for a, b in edges(GRAPH) if layer(a) == "feature" and layer(b) == "assembly"]
    assert wrong == []


def test_no_two_modules_import_each_other():
    try:
        graphlib.TopologicalSorter(GRAPH).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"an import cycle: {' -> '.join(exc.args[1])}")


def test_only_the_assembly_imports_several_features():
    """The night is assembled in one place: a feature package may use another's helpers
    (the healthcheck probes Goldsky with ingest's client), but only the assembly wires
    features together."""
    for module in GRAPH:
        if layer(module) != "feature":
            continue
        others = {b.split(".")[0] for b in GRAPH[module] if layer(b) == "feature"}
        others.discard(module.split(".")[0])
        assert len(others) <= 1, (module, others)


def test_no_private_name_crosses_a_module():
    crossing = []
    for module in GRAPH:
        path = PROJECT_ROOT / "runner.py" if module == "runner" else None
        if path is None:
            base = PROJECT_ROOT.joinpath(*module.split("."))
            path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PROJECT:
                crossing += [
                    f"{module}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")
                ]
    assert crossing == []


# --- constants shared with the dbt projects -------------------------------------------------


def _dbt_vars(project: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / project / "dbt_project.yml").read_text()).get("vars", {})


@pytest.mark.parametrize("project", ["dbt_project", "dbt_app"])
def test_uncategorized_is_the_same_word_in_python_and_in_dbt(project):
    assert _dbt_vars(project)["uncategorized"] == names.UNCATEGORIZED


def test_resolved_outcomes_are_the_same_in_python_and_in_dbt():
    """The ingest contract accepts a resolution map's outcome only with its payout pair, and
    int_resolutions closes positions on the same pairs: the two must never disagree."""
    from ingest.reference_contract import RESOLUTION_PAYOUTS

    in_dbt = {k: tuple(v) for k, v in _dbt_vars("dbt_project")["resolution_payouts"].items()}
    assert in_dbt == dict(RESOLUTION_PAYOUTS)


def test_the_canonical_categories_are_the_bundled_definitions_buckets():
    """The marts' category tests accept the var canonical_categories (and uncategorized):
    the buckets of the bundled category definitions (what the sample writes as
    data/category_definitions.json), in their order. Read from the code, not from data/,
    which a fresh clone has not generated yet."""
    from ingest.sample_data import CANONICAL_CATEGORIES

    assert _dbt_vars("dbt_project")["canonical_categories"] == list(CANONICAL_CATEGORIES)
