"""HTTP API routers; server/app.py mounts them all under /api/v1 (API_PREFIX), each carries only its sub-prefix."""
