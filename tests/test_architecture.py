"""Domains compose, the core does not import them: a domain plugs in through clinic.domains."""

import ast
from pathlib import Path

import pytest

import clinic.models
from clinic.models import bookings, consultations, drugs, phrases, referrals, service_days

CLINIC = Path(clinic.models.__file__).parent.parent
DOMAIN_PACKAGES = ("clinic.referrals", "clinic.service_days", "clinic.consultations")
DOMAIN_MODELS = (bookings, consultations, drugs, phrases, referrals, service_days)
# The app factory registers the domains and the demo loads each one's data: they may name them.
NOT_CORE = ("__init__.py", "demo.py")
CORE = sorted(
    path
    for path in [*CLINIC.glob("*.py"), *CLINIC.glob("admin/*.py"), *CLINIC.glob("auth/*.py"),
                 *CLINIC.glob("today/*.py")]
    if path.parent != CLINIC or path.name not in NOT_CORE
)  # fmt: skip


def _domain_names() -> set[str]:
    return {name for module in DOMAIN_MODELS for name in module.__all__}


def domain_imports(path: Path) -> list[str]:
    """What this file imports from a domain: its packages, its models, or a name of its models
    through `clinic.models`."""
    found, names = [], _domain_names()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(DOMAIN_PACKAGES)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module.startswith(DOMAIN_PACKAGES) or module in {m.__name__ for m in DOMAIN_MODELS}:
                found.append(module)
            elif module == "clinic.models":
                found += [f"clinic.models.{a.name}" for a in node.names if a.name in names]
    return found


@pytest.mark.parametrize("path", CORE, ids=lambda path: str(path.relative_to(CLINIC)))
def test_the_core_imports_no_domain(path):
    assert domain_imports(path) == []


def test_the_check_sees_a_domain_import(tmp_path):
    core = tmp_path / "core.py"
    core.write_text("from clinic.models import HubService, User\nimport clinic.referrals.views\n")
    assert domain_imports(core) == ["clinic.models.HubService", "clinic.referrals.views"]
