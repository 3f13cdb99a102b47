"""The package's import graph has no cycles between its modules and sub-packages."""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).parent.parent / "mfgp"


def unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def import_graph() -> dict[str, set[str]]:
    graph = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        guarded = set()
        for node in ast.walk(tree):  # `if TYPE_CHECKING:` blocks never run
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
                guarded |= {id(n) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [n.name for n in node.names]
            for name in names:
                if name.startswith("mfgp.") and unit(name) != unit(module):
                    graph[unit(module)].add(unit(name))
    return graph


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_the_layers_point_down():
    graph = import_graph()
    for low in ("mfgp.models", "mfgp.fit", "mfgp.kernels", "mfgp.data", "mfgp.featurize"):
        assert "mfgp.estimators" not in graph.get(low, set()), low
        assert "mfgp.calibration" not in graph.get(low, set()), low
        assert "mfgp.hurdle" not in graph.get(low, set()), low
    assert "mfgp.estimators" not in graph.get("mfgp.hurdle", set())
    # the trainers know kernels, never model classes
    assert "mfgp.models" not in graph.get("mfgp.fit", set())


def test_estimators_hold_no_modelling_code():
    """The facade builds no kernel, likelihood or model class and runs no optimiser itself."""
    import ast

    files = sorted((ROOT / "estimators").glob("*.py"))
    assert len(files) > 1, files  # the package, one file per estimator
    names = set()
    for path in files:
        tree = ast.parse(path.read_text())
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    banned = {"GPClassifier", "SingleFidelityGP", "AR1GP", "MultiTaskGP", "ExplicitLatentGP",
              "fit_gp", "fit_variational", "fit_ar1_recursive", "LBFGS", "Adam", "icdf",
              "MaternKernel", "ScaleKernel"}  # fmt: skip
    assert not names & banned, names & banned
