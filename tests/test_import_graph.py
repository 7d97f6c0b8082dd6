"""The suite's packages import each other one way: no module imports a module that imports it.

The graph holds every import statement of the installed packages, the ones inside functions too (a
function-level import that closes a cycle only hides it), except those under ``if TYPE_CHECKING:``.
An import of ``a.b.c`` is an edge to the module ``a.b.c``; ``from a.b import name`` is an edge to
``a.b.name`` when that is a module, else to ``a.b``.
"""

from __future__ import annotations

import pytest

from tests.harness.imports import _cycles, import_graph

def test_the_graph_sees_the_packages():
    graph = import_graph()
    # A graph that missed the edges would pass the cycle test vacuously.
    assert "mobilebert_common.config" in graph["mobilebert_pt.modeling"]
    assert "mobilebert_common.config" in graph["mobilebert_tf.modeling"]
    assert not any(m.startswith(("mobilebert_pt", "mobilebert_tf")) for m in graph["mobilebert_common.config"])


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    if cycles:
        pytest.fail("import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in cycles))


def test_the_core_imports_nothing_above_it():
    for module, targets in import_graph().items():
        if module.startswith("mobilebert_common"):
            upward = sorted(t for t in targets if not t.startswith("mobilebert_common"))
            assert not upward, f"{module} imports {upward}: mobilebert_common imports no other package of the suite"


def test_the_core_imports_no_framework_package():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith(("mobilebert_common", "conversion")):
            upward = sorted(t for t in targets if t.startswith(("mobilebert_pt", "mobilebert_tf", "mobilebert_cli")))
            assert not upward, f"{module} imports {upward}: the core and the converters import no framework package"
