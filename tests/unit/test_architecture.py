"""The layering of ``src/outpaint`` (docs/architecture.md), checked on the source itself.

Every import counts: module level, inside functions (the lazy ones) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "outpaint"

# The core, innermost first: a module may import only modules of a lower rank.
RANKS: dict[str, int] = {
    "outpaint": 0,
    "outpaint.errors": 0,
    "outpaint.naming": 1,
    "outpaint.log": 1,
    "outpaint.limits": 1,
    "outpaint.plan": 2,
    "outpaint.job": 2,
    "outpaint.events": 2,
    "outpaint.outcomes": 3,
    "outpaint.probe": 3,
    "outpaint.results": 3,
    "outpaint.dashscope": 3,
    "outpaint.handover": 4,
    "outpaint.store": 4,
    "outpaint.config": 4,
    "outpaint.oss": 5,
    "outpaint.lease": 5,
    "outpaint.checkpoints": 5,
    "outpaint.deadletters": 5,
    "outpaint.journal": 5,
    "outpaint.health": 2,
    "outpaint.submit": 6,
    "outpaint.tracking": 5,
    "outpaint.publish": 6,
    "outpaint.poller": 7,
    "outpaint.intake": 7,
    "outpaint.runtime": 8,
    "outpaint.app": 9,
}
# Modules that decide, and must stay free of I/O: none of these, ours or a library's.
PURE = (
    "outpaint.plan",
    "outpaint.job",
    "outpaint.outcomes",
    "outpaint.naming",
    "outpaint.tracking",
    "outpaint.health",
)
IO_MODULES = (
    "outpaint.oss", "outpaint.store", "outpaint.lease", "outpaint.journal", "outpaint.checkpoints",
    "outpaint.deadletters",
    "outpaint.results", "outpaint.probe", "outpaint.app", "outpaint.runtime", "outpaint.config",
    "oss2", "httpx", "PIL", "requests", "socket",
)  # fmt: skip
TRANSITION_METHODS = ("move", "begin", "note")
MAX_CORE_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports: ours resolved to the module (not the package), others by top name."""
    found: set[str] = set()
    package = (name if path.name == "__init__.py" else name.rpartition(".")[0]).split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .x import y: relative to the package, one level up per extra dot
                base = ".".join([*package[: len(package) - node.level + 1], base]).strip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {item for item in found if item != "__future__"}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: {i for i in imports_of(name, path, known) if i in known} for name, path in found.items()}


def core(name: str) -> bool:
    """Everything but the command line (``outpaint.cli``, ``python -m outpaint``) and the local stack."""
    return not name.startswith(("outpaint.cli", "outpaint.local", "outpaint.__main__"))


def test_every_core_module_has_a_rank():
    assert sorted(n for n in modules() if core(n) and n not in RANKS) == []


def test_arrows_point_inward():
    wrong = [
        f"{name} (rank {RANKS[name]}) imports {target} (rank {RANKS[target]})"
        for name, targets in graph().items()
        if name in RANKS
        for target in targets
        if target in RANKS and RANKS[target] >= RANKS[name] and target != "outpaint"
    ]
    assert wrong == []


def test_no_import_cycle_anywhere():
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_core_never_imports_the_cli_or_the_local_stack():
    leaks = [f"{n} → {t}" for n, targets in graph().items() if core(n) for t in targets if not core(t)]
    assert leaks == []


def test_the_emulators_import_nothing_of_the_pipeline():
    emulators = ("outpaint.local.oss", "outpaint.local.dashscope")
    leaks = [
        f"{n} → {t}"
        for n, targets in graph().items()
        if n.startswith(emulators)
        for t in targets
        if not t.startswith(emulators)
    ]
    assert leaks == []


@pytest.mark.parametrize("name", PURE)
def test_deciding_modules_import_no_io(name):
    found = modules()
    imported = imports_of(name, found[name], set(found))
    assert sorted(i for i in imported if i.split(".")[0] in IO_MODULES or i in IO_MODULES) == []


def test_no_core_module_but_the_planner_is_over_400_lines():
    sizes = {n: len(p.read_text().splitlines()) for n, p in modules().items() if core(n)}
    assert {n: size for n, size in sizes.items() if size > MAX_CORE_LINES and n != "outpaint.plan"} == {}


# --- every transition goes through the journal ---------------------------------------------------------
def state_changes(source: str) -> list[str]:
    """Places in ``source`` that set a job's state: ``x.state = …``, ``JobRecord(state=…)``,
    ``model_copy(update={"state": …})`` and calls of the transition methods."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Attribute) and leaf.attr == "state":
                    found.append(f"line {node.lineno}: assigns .state")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called == "JobRecord" and any(k.arg == "state" for k in node.keywords):
                found.append(f"line {node.lineno}: JobRecord(state=…)")
            if called == "model_copy" and any(
                isinstance(k.value, ast.Dict)
                and any(isinstance(key, ast.Constant) and key.value == "state" for key in k.value.keys)
                for k in node.keywords
            ):
                found.append(f"line {node.lineno}: model_copy(update={{'state': …}})")
            if called in TRANSITION_METHODS and isinstance(func, ast.Attribute):
                found.append(f"line {node.lineno}: .{called}()")
    return found


def test_the_detector_sees_each_way_of_setting_a_state():
    source = (
        "job.state = State.DONE\n"
        "JobRecord(job_id='x', state=State.DONE)\n"
        "job.model_copy(update={'state': State.DONE})\n"
        "job.move(State.DONE, now=1.0)\n"
        "job.begin(State.QUEUED, now=1.0)\n"
    )
    assert len(state_changes(source)) == 5


def test_job_states_change_only_in_the_journal():
    """job.py defines the transitions; journal.py is the one place that calls them."""
    allowed = {"outpaint.job", "outpaint.journal"}
    elsewhere = {
        name: changes
        for name, path in modules().items()
        if core(name) or name.startswith("outpaint.cli")
        if name not in allowed and (changes := state_changes(path.read_text()))
    }
    assert elsewhere == {}


# --- docs/architecture.md stays true ---------------------------------------------------------------------
ARCHITECTURE = SRC.parent / "docs" / "architecture.md"


def test_the_state_diagram_lists_exactly_the_allowed_moves():
    from outpaint.job import INITIAL_STATES, MOVES

    text = ARCHITECTURE.read_text()
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    drawn = {tuple(line.split(" --> ")) for line in diagram.splitlines() if " --> " in line.strip()}
    drawn = {(a.strip(), b.strip()) for a, b in drawn}
    allowed = {("[*]", s.value) for s in INITIAL_STATES} | {
        (a.value, b.value) for a, targets in MOVES.items() for b in targets
    }
    assert drawn == allowed


def test_the_module_map_names_every_core_module_with_its_rank():
    rows = {}
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`") and cells[1].endswith(".py`"):
            rows[f"outpaint.{cells[1].strip('`')[:-3]}"] = int(cells[0])
    assert rows == {name: rank for name, rank in RANKS.items() if name != "outpaint"}
