"""constraints.txt pins every package the project installs: the project's dependencies
and its dev extra (what CI installs), down to the last dependency of a dependency, at
the version installed here. (.ci/run checks the same on CI's fresh install.)"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

from .conftest import BASE_DIR


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned() -> dict[str, str]:
    lines = (BASE_DIR / "constraints.txt").read_text().splitlines()
    pins = [line.split("==", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {_name(name): version.strip() for name, version in pins}


def _installed_requirements(root: str, extras: set[str]) -> dict[str, str]:
    """Every distribution reachable from `root[extras]`, with its installed version."""
    found: dict[str, str] = {}
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in wanted or {""}]
            if requirement.marker and not any(
                requirement.marker.evaluate(env) for env in environments
            ):
                continue
            key = _name(requirement.name)
            if key not in found:
                found[key] = metadata.version(requirement.name)
                todo.append((requirement.name, set(requirement.extras)))
            elif requirement.extras:
                todo.append((requirement.name, set(requirement.extras)))
    return found


def test_constraints_pin_every_package_of_the_project_and_its_dev_extra():
    pinned = _pinned()
    installed = _installed_requirements("backoffice", {"dev"})
    assert "schemathesis" in installed
    # pip and setuptools (pip-audit needs pip) are the virtualenv's own, as in .ci/run.
    unpinned = sorted(f"{name}=={version}" for name, version in installed.items()
                      if name not in ("pip", "setuptools") and pinned.get(name) != version)
    assert not unpinned, f"not pinned in constraints.txt (or at another version): {unpinned}"


def test_constraints_keep_their_header():
    text = (BASE_DIR / "constraints.txt").read_text()
    assert text.startswith("# Pinned versions of every package the project installs")
    assert "pip freeze --exclude-editable" in text
