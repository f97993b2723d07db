"""Work that runs beside the HTTP server: the MQTT consumer and the retention loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from footfall.server.api.deps import ServerContext

if TYPE_CHECKING:
    from footfall.server.mqtt_consumer import MqttConsumer
    from footfall.server.retention import RetentionLoop


def start_background_work(ctx: ServerContext) -> list[MqttConsumer | RetentionLoop]:
    workers: list[MqttConsumer | RetentionLoop] = []
    settings = ctx.settings
    if settings.mqtt_url:
        from footfall.server.mqtt_consumer import MqttConsumer

        workers.append(
            MqttConsumer(
                settings.mqtt_url,
                ctx.ingestor,
                group=settings.mqtt_group,
                client_id=settings.mqtt_client_id,
                prefix=settings.topic_prefix,
            ).start()
        )
    # Always: a site may have a retention of its own (admin API) on a server that keeps raw buckets forever.
    from footfall.server.retention import RetentionLoop

    workers.append(RetentionLoop(ctx.db, settings.retention_days).start())
    return workers
