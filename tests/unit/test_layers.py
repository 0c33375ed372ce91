"""What may import what (the layers in the design notes), checked on the source with ast."""

import ast

from tests.conftest import REPO

PACKAGE = REPO / "src" / "genaug"
# Everything but the local stack itself and the CLI (whose `genaug` commands may start it).
# Besides the stack itself: the shell's entry point, and the operator commands' one adapter to a
# local stack (backup, restore and gc run the same code on a cluster, where there is none).
LOCAL_STACK_USERS = ("stack", "cli.py", "ops/local_stack.py")
PRODUCTION = [p for p in PACKAGE.rglob("*.py")
              if not str(p.relative_to(PACKAGE)).startswith(LOCAL_STACK_USERS)]
PRODUCTION += [*(REPO / "pipelines").glob("*.py"), *(REPO / "components").glob("*.py")]


def _imports(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_production_code_never_imports_the_local_stack():
    """genaug.stack starts dev servers; steps, serving, deploy and the pipelines reach the
    services through genaug.services (names, endpoints) and their clients."""
    offenders = {str(p.relative_to(REPO)): sorted(n for n in _imports(p) if n == "genaug.stack"
                                                  or n.startswith("genaug.stack."))
                 for p in PRODUCTION}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_services_layer_imports_nothing_above_it():
    below = {"genaug.services", "genaug.atomic"}  # atomic: one file written whole, stdlib only
    for path in (PACKAGE / "services").glob("*.py"):
        ours = {n for n in _imports(path) if n.startswith("genaug.")}
        assert all(any(n == b or n.startswith(b + ".") for b in below) for n in ours), (path.name, ours)
