"""Maps each top-level part folder onto the one ``footfall`` import namespace.

``edge/`` becomes ``footfall.edge``, ``server/`` becomes ``footfall.server`` and so on, so that nothing
with a generic name (``server``, ``models``) lands in site-packages. Metadata, and which data files each
package ships (``[tool.setuptools.package-data]``), live in pyproject.toml.

Folders that hold only data (``edge/samples``, ``server/static/js``, ``models/bundles`` …) are listed as
packages too (namespace packages, no ``__init__.py``): setuptools ships a data file only with the package of
its own folder, and warns about any data folder that is not listed.
"""

from setuptools import find_namespace_packages, setup

PARTS = {
    "footfall": "footfall",
    "footfall.core": "core",
    "footfall.edge": "edge",
    "footfall.server": "server",
    "footfall.models": "models",
    "footfall.exporter": "exporter",
}

packages: list[str] = []
package_dir: dict[str, str] = {}
for package, folder in PARTS.items():
    package_dir[package] = folder
    packages.append(package)
    for sub in find_namespace_packages(folder, exclude=["*__pycache__*"]):
        # A folder whose name is not an identifier (models/bundles/audience-v7) is data of its parent.
        if all(part.isidentifier() for part in sub.split(".")):
            packages.append(f"{package}.{sub}")

setup(packages=packages, package_dir=package_dir)
