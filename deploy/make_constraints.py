"""Write constraints.txt: the exact versions of everything the base package (govqa, without extras)
installs, read from the environment it runs in, so that an install later gets the same versions:

    .venv/bin/python deploy/make_constraints.py > constraints.txt
    pip install -c constraints.txt .

Run it in a working environment after changing pyproject.toml's dependencies (or to move to newer
versions: pip install -U in a fresh venv, run the tests, then this)."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(root: str = "govqa") -> dict[str, str]:
    """{name: version} of what `root`'s base requirements pull in, transitively, as installed."""
    pinned: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a requirement whose marker does not apply here
        key = canonicalize_name(dist.metadata["Name"])
        if key != canonicalize_name(root):
            pinned[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return pinned


def main() -> None:
    pins = closure()
    print("# Exact versions of govqa's dependencies (base package, no extras), from a working environment:")
    print(f"# Python {platform.python_version()} on {sys.platform}. Regenerate: python deploy/make_constraints.py > constraints.txt")
    print("# Use: pip install -c constraints.txt .   (the Dockerfile does)")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")


if __name__ == "__main__":
    main()
