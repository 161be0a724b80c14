"""The import structure (issue 21; docs/architecture.md, "Layers"): no import cycles between
the project's packages and top-level modules, counting imports inside functions too (they are
cycles all the same, only deferred), and the lower layers never reach up."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "fabricsearch"


def _unit(module: str) -> str:
    """The unit of layering: a sub-package (``catalogue``, ``hashing``, ``gui``, ``cli``,
    ``resources``) or a top-level module (``search``, ``featurestore``, …)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fabricsearch"


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            else:
                continue
            for target in targets:
                if target.startswith("fabricsearch."):
                    a, b = _unit(module), _unit(target)
                    if a != b:
                        edges[a].add(b)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_packages_and_modules() -> None:
    assert _cycles(_graph()) == []


def test_the_lower_layers_never_reach_up() -> None:
    edges = _graph()
    # The storage layer knows no networks; the networks know no window or command line; only
    # gui/ imports Qt (checked at run time in test_gui_shell) and nothing imports the CLI.
    assert "hashing" not in edges["catalogue"]
    assert "search" not in edges["catalogue"]
    for low in ("catalogue", "hashing", "featurestore", "imaging", "config", "search"):
        assert not {"gui", "cli"} & edges[low], low
    assert all("cli" not in deps for unit, deps in edges.items() if unit not in ("cli", "__main__"))
    # The feature store only stores: the extractor (hashing.extract) computes and appends.
    assert "hashing" not in edges["featurestore"]
    # Leaves: configuration, errors, the backbone registry and model-file paths import no
    # other part of the project but errors (which names the log file).
    for leaf in ("config", "backbone_specs", "modelfiles", "errors", "livefiles", "threads"):
        assert edges[leaf] <= {"errors", "backbone_specs", "logging_setup"}, (leaf, edges[leaf])


def test_nothing_below_the_services_imports_them() -> None:
    edges = _graph()
    above = {"cli", "gui", "services", "__main__"}
    assert all("services" not in deps for unit, deps in edges.items() if unit not in above)


# What the command line may import: the application layer for its work, and the data types
# and plumbing it shows or needs (issue 21). Anything else is work done past the services.
CLI_MAY_IMPORT = {
    "fabricsearch",  # __version__
    "fabricsearch.errors",  # UserError and the crash report
    "fabricsearch.config",  # the configuration dataclasses the flags fill
    "fabricsearch.jobs",  # progress, cancel, Cancelled
    "fabricsearch.catalogue",  # Library, LibraryError, ImageRecord, ModelInfo
    "fabricsearch.catalogue.metadata",  # FabricMetadata, FIELDS (what a record shows)
    "fabricsearch.logging_setup",  # the process's log file and crash logging (main)
    "fabricsearch.atomicio",  # the disk-full message at the error boundary
    "fabricsearch.gui.app",  # `fabricsearch gui` starts the other front end
}
CLI_MAY_IMPORT_UNDER = ("fabricsearch.services", "fabricsearch.cli")


def _imports_of(source: str) -> set[str]:
    """Every project module a source imports, ``from fabricsearch import colour`` counted as
    ``fabricsearch.colour`` (a name that is a module of the package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                rel = Path(*sub.split(".")[1:])
                if (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel).is_dir():
                    found.add(sub)
    return {m for m in found if m == "fabricsearch" or m.startswith("fabricsearch.")}


def _cli_reaches_past_services(sources: dict[str, str]) -> dict[str, set[str]]:
    out = {}
    for name, source in sources.items():
        deeper = {
            m
            for m in _imports_of(source)
            if m not in CLI_MAY_IMPORT
            and not any(m == u or m.startswith(u + ".") for u in CLI_MAY_IMPORT_UNDER)
        }
        if deeper:
            out[name] = deeper
    return out


def test_the_command_line_works_only_through_the_services() -> None:
    sources = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "cli").glob("*.py")}
    assert _cli_reaches_past_services(sources) == {}


def test_the_window_controllers_work_only_through_the_services() -> None:
    # The same rule for gui/controllers/ (the window's own modules are theirs to import).
    sources = {
        p.name: p.read_text(encoding="utf-8") for p in (ROOT / "gui" / "controllers").glob("*.py")
    }
    reached = _cli_reaches_past_services(sources)
    assert {
        n: {m for m in ms if not m.startswith("fabricsearch.gui.")} for n, ms in reached.items()
    } == {n: set() for n in reached}


# What the rest of the window (its app, dialogs, widgets, session, export) may import besides:
# the vocabulary it shows, which are data, not work (issue 21; docs/architecture.md, "Layers").
GUI_MAY_IMPORT = CLI_MAY_IMPORT | {
    "fabricsearch.taxonomy",  # Taxonomy: the category names and pickers
    "fabricsearch.colour",  # COLOUR_NAMES: the palette's and the filters' colour names
    "fabricsearch.stages",  # StagePlan, OverallProgress: the import's one progress bar
}


def test_the_whole_window_works_only_through_the_services() -> None:
    sources = {
        p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
        for p in (ROOT / "gui").rglob("*.py")
    }
    assert any(n.startswith("gui/dialogs/") for n in sources)
    assert any(n.startswith("gui/widgets/") for n in sources)
    reached = {}
    for name, source in sources.items():
        deeper = {
            m
            for m in _imports_of(source)
            if m not in GUI_MAY_IMPORT
            and not any(m == u or m.startswith(u + ".") for u in CLI_MAY_IMPORT_UNDER)
            and not m.startswith("fabricsearch.gui")
        }
        if deeper:
            reached[name] = deeper
    assert reached == {}


def test_a_command_reaching_past_the_services_is_caught() -> None:
    bad = {
        "a.py": "def f():\n    from fabricsearch.hashing.train import train_library\n",
        "b.py": "from fabricsearch import colour\n",
        "c.py": "import fabricsearch.search\n",
        "ok.py": "from fabricsearch.services.training import train\nfrom fabricsearch import jobs\n",
    }
    assert _cli_reaches_past_services(bad) == {
        "a.py": {"fabricsearch.hashing.train"},
        "b.py": {"fabricsearch.colour"},
        "c.py": {"fabricsearch.search"},
    }


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _module_graph(package: str) -> dict[str, set[str]]:
    """Module → project modules it imports at run time, inside functions too; imports under
    ``if TYPE_CHECKING:`` are left out (they never run). Only modules of ``package``."""

    def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
        out: list[ast.AST] = []
        todo = [tree]
        while todo:
            node = todo.pop()
            out.append(node)
            for child in ast.iter_child_nodes(node):
                test = child.test if isinstance(child, ast.If) else None
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    todo.extend(child.orelse)  # type: ignore[union-attr]
                    continue
                todo.append(child)
        return out

    edges: dict[str, set[str]] = defaultdict(set)
    for path in (ROOT / package).rglob("*.py"):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            prefix = f"fabricsearch.{package}."
            for target in targets:
                if (
                    target.startswith(prefix)
                    and (ROOT.parent / target.replace(".", "/")).with_suffix(".py").is_file()
                ):
                    edges[module].add(target)
    return edges


def test_no_run_time_import_cycles_inside_the_storage_layer() -> None:
    """Issue 21: `library` ↔ `team` ↔ `jobprogress` imported each other inside functions.
    The library reaches the engines through `backend`; the engine modules, the errors and the
    authors module import no library."""
    edges = _module_graph("catalogue")
    assert _cycles(edges) == []
    for low in ("team", "jobprogress", "postgres", "errors", "authors", "backend"):
        assert "fabricsearch.catalogue.library" not in edges[f"fabricsearch.catalogue.{low}"], low
