"""Work that runs beside the HTTP server: the MQTT consumer and the retention loop."""

from __future__ import annotations

from footfall.server.api.deps import ServerContext


def start_background_work(ctx: ServerContext) -> list:
    workers: list = []
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
    if settings.retention_days:
        from footfall.server.retention import RetentionLoop

        workers.append(RetentionLoop(ctx.db, settings.retention_days).start())
    return workers
