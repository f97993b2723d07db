"""footfall: privacy-first audience analytics for camera boxes.

Parts live in one namespace: ``footfall.core`` (shared contracts), ``footfall.edge`` (camera agent),
``footfall.server`` (ingest, API, dashboards), ``footfall.models`` (training and evaluation) and
``footfall.exporter`` (ONNX bundles). Each part installs with its own extra, e.g. ``pip install footfall[edge]``.
"""

__version__ = "0.1.0"
