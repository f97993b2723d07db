"""HTTP API routers (versioned under /api/v1)."""
