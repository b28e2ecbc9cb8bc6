"""Static files that ship inside installed wheels, served under `vendor/` without copying them
into the repository (DESIGN.md: Plotly.js comes from the `plotly` wheel, not a CDN or a vendored
file)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

# served path -> (installed package, file inside it)
PACKAGE_ASSETS: dict[str, tuple[str, str]] = {
    "vendor/plotly.min.js": ("plotly", "package_data/plotly.min.js"),
}


def _package_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


class PackageAssetFinder(BaseFinder):
    def check(self, **kwargs: Any) -> list[Any]:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        asset = PACKAGE_ASSETS.get(path)
        found = _package_file(*asset) if asset else None
        if found is None:
            return [] if find_all else None
        return [str(found)] if find_all else str(found)

    def list(self, ignore_patterns: Any) -> Any:
        for served, asset in PACKAGE_ASSETS.items():
            found = _package_file(*asset)
            if found is not None:
                storage = FileSystemStorage(location=str(found.parent))
                storage.prefix = str(Path(served).parent)  # type: ignore[attr-defined]
                yield found.name, storage
