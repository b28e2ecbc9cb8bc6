"""DESIGN.md: apps depend downward only — core ← accounts ← crm ← everything else — and nothing
depends on the apps that read everyone (insights, incentives, workspace) or on the demo generator.

Every module under src/salesloop is parsed (not imported) and each `import salesloop.<app>…` /
`from salesloop.<app>… import` / relative import that leaves its app, at any depth (imports inside
functions too), is checked against the layers below. Lower apps tell the apps above them about
changes through signals (`salesloop.crm.signals`), never by importing them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import salesloop

SOURCE = Path(salesloop.__file__).parent

# The layer of each app: an app may import apps of its own layer or below. Layer 3 apps are
# siblings (a touch changes health; intake routes and notifies), as DESIGN.md only orders the
# layers. A new app must be placed here before its code can pass.
LAYERS = {
    "core": 0,
    "accounts": 1,
    "crm": 2,
    "pipeline": 3,
    "engagement": 3,
    "routing": 3,
    "intake": 3,
    "health": 3,
    "notify": 3,
    "enablement": 3,
    # They read the others through their selectors; nobody but themselves imports them.
    "insights": 4,
    "incentives": 4,
    "workspace": 4,
}
ISOLATED = {"insights", "incentives", "workspace", "demo"}  # imported by no other app
# The data generator loads everything; the project modules (settings, urls, api, cli, asgi, wsgi)
# assemble everything.
IMPORT_ANYTHING = {"demo", ""}

# Imports the rule refuses but the tree needs today: module → apps it may import besides the rule.
# Each carries its reason. An entry no longer needed fails the test, so this list only shrinks.
ALLOWED: dict[str, set[str]] = {
    # `salesloop demo`, a console command (an entry point like cli.py): loads the demo organisation.
    "core/management/commands/demo.py": {"accounts", "demo"},
    # A lead is born in a stage: lead_create records the entry move with
    # pipeline.services.stage_move_record (docs/architecture.md, "Layers"); custom fields (C10.1)
    # live in workspace and are validated where a lead is written.
    "crm/services.py": {"pipeline", "workspace"},
    # The lead lists show the health badge and filter by health and custom fields in one query.
    "crm/selectors.py": {"health", "workspace"},
    # The lead's page, REST API and admin are where a lead is shown whole: its stage moves, its
    # assignment and reassignment, its health and referrals, its custom fields. They compose the
    # apps above crm as the project's urls/api do (debt: they could move to a page-level app).
    "crm/views.py": {"pipeline", "routing", "workspace"},
    "crm/api.py": {"health", "intake", "routing", "workspace"},
    "crm/admin.py": {"pipeline", "routing"},
    # A custom field can be a stage's entry requirement (C10.1): the gate reads its definition.
    "pipeline/requirements.py": {"workspace"},
}


def app_of(relative: Path) -> str:
    """The app a module belongs to; "" for the project modules at the package's top."""
    return relative.parts[0] if len(relative.parts) > 1 else ""


def imported_apps(source: str, relative: Path) -> list[tuple[int, str, str]]:
    """(line, app, dotted name) of every salesloop app a module imports, its own app included."""
    package = ["salesloop", *relative.parent.parts]  # an __init__.py's too: its directory
    found = []
    for node in ast.walk(ast.parse(source, str(relative))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, `level - 1` packages up
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from salesloop import insights` names the app in the imported names
            names = [f"{module}.{alias.name}" for alias in node.names] if module == "salesloop" else [module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "salesloop" and len(parts) > 1:
                found.append((node.lineno, parts[1], name))
    return sorted(found)  # ast.walk goes breadth first


def is_allowed(importer: str, target: str) -> bool:
    """The layering rule, without the exceptions."""
    if importer == target or importer in IMPORT_ANYTHING:
        return True
    if target in ISOLATED or target not in LAYERS or importer not in LAYERS:
        return False  # the isolated apps, and the project modules (urls, api…) that sit on top
    return LAYERS[target] <= LAYERS[importer]


def violations(relative: Path, source: str, used: set[tuple[str, str]]) -> list[str]:
    importer = app_of(relative)
    found = []
    for line, target, name in imported_apps(source, relative):
        if is_allowed(importer, target):
            continue
        if target in ALLOWED.get(relative.as_posix(), set()):
            used.add((relative.as_posix(), target))
            continue
        found.append(f"src/salesloop/{relative.as_posix()}:{line}: {importer} imports {name}")
    return found


def modules() -> list[Path]:
    return sorted(path.relative_to(SOURCE) for path in SOURCE.rglob("*.py"))


def test_every_app_has_a_layer() -> None:
    apps = {app_of(relative) for relative in modules()} - {""}
    assert apps <= set(LAYERS) | ISOLATED, f"place these apps in LAYERS: {sorted(apps - set(LAYERS))}"


def test_apps_import_only_apps_below_them() -> None:
    # given every module of the project
    used: set[tuple[str, str]] = set()
    # when its imports are read
    found = [
        line for relative in modules() for line in violations(relative, (SOURCE / relative).read_text(), used)
    ]
    # then none reaches up, and every allowance is still needed
    assert not found, "imports against DESIGN.md's layers (send a crm.signals signal instead):\n" + (
        "\n".join(found)
    )
    stale = sorted({(module, app) for module, apps in ALLOWED.items() for app in apps} - used)
    assert not stale, f"allowances no longer needed, remove them from ALLOWED: {stale}"


def test_an_upward_import_is_named_with_file_and_line() -> None:
    # given pipeline's services calling insights directly, at the top and inside a function
    source = (
        "from salesloop.crm.models import Lead\n"
        "def stage_move_record():\n"
        "    from salesloop.insights.funnel_rollup import funnel_move_apply\n"
        "    import salesloop.demo.generator\n"
        "from salesloop import workspace\n"
        "from ..insights import receivers\n"
    )
    # when it is checked
    found = violations(Path("pipeline/services.py"), source, set())
    # then each upward import is reported where it is
    assert found == [
        "src/salesloop/pipeline/services.py:3: pipeline imports salesloop.insights.funnel_rollup",
        "src/salesloop/pipeline/services.py:4: pipeline imports salesloop.demo.generator",
        "src/salesloop/pipeline/services.py:5: pipeline imports salesloop.workspace",
        "src/salesloop/pipeline/services.py:6: pipeline imports salesloop.insights",
    ]


def test_the_layers_allow_downward_and_sibling_imports() -> None:
    source = (
        "from salesloop.crm import signals\n"
        "from salesloop.notify.services import notification_send\n"
        "from . import requirements\n"
    )
    assert violations(Path("pipeline/services.py"), source, set()) == []
    assert violations(Path("insights/receivers.py"), source, set()) == []
    assert violations(Path("demo/generator.py"), "import salesloop.insights.funnel_rollup\n", set()) == []
    assert violations(Path("urls.py"), "import salesloop.insights.urls\n", set()) == []
    assert violations(Path("crm/models.py"), "from salesloop.pipeline.models import Stage\n", set()) == [
        "src/salesloop/crm/models.py:1: crm imports salesloop.pipeline.models"
    ]
