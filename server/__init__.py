"""footfall.server: the central service that ingests per-zone counts and serves traffic and ad insight.

Modules, one job each: ``settings`` (environment), ``db`` (engines, SQLite WAL), ``tables`` and
``migrations/`` (schema, Alembic), ``ingest`` (the one idempotent upsert, shared by MQTT and HTTP),
``mqtt_consumer`` (MQTT 5 shared subscription, acked after commit), ``catalog`` (sites and zones),
``rollups`` and ``retention`` (hourly/daily rollups, raw-data retention), ``queries`` (reads),
``privacy`` (k-anonymity with complementary suppression), ``stats`` (Wilson intervals), ``auth`` (hashed
API keys with roles), ``api/`` (routers), ``app`` (the FastAPI app and dashboard mount), ``commands`` (CLI).
The HTTP API is described in API.md beside this file.
"""
