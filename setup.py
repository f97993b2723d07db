"""Maps each top-level part folder onto the one ``footfall`` import namespace.

``edge/`` becomes ``footfall.edge``, ``server/`` becomes ``footfall.server`` and so on, so that nothing
with a generic name (``server``, ``models``) lands in site-packages. Metadata lives in pyproject.toml.
"""

from setuptools import find_packages, setup

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
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
