"""footfall.server: the central service that ingests per-zone counts and serves traffic and ad insight.

Modules, one job each: ``settings`` (environment), ``db`` (engines, SQLite WAL), ``tables`` and
``migrations/`` (schema, Alembic), ``ingest`` (the one idempotent upsert, shared by MQTT and HTTP),
``mqtt_consumer`` (MQTT 5 shared subscription, acked after commit), ``catalog`` (sites and zones),
``release`` (what each zone × hour cell may release), ``rollups/`` (the derived tables: hourly cells, daily
sums and slot running totals, with apply, rebuild, time-zone re-filing and checks), ``retention`` (raw-data
retention), ``queries``
(reads, of released values only), ``classifiers`` (the gender bundles' decision rates, and which bundle
decided each cell), ``shares`` (the female share corrected for those bundles' errors, from released values),
``stats`` (Wilson and Poisson intervals), ``auth`` and ``auth_limit`` (hashed API keys
with roles, failed-key rate limit), ``api/`` (routers), ``app`` (the FastAPI app and dashboard mount),
``commands`` (CLI).
The HTTP API is described in API.md beside this file.
"""
