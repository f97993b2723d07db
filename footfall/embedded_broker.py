"""An embedded MQTT 3.1.1 broker (amqtt) for ``footfall demo`` on machines without mosquitto.

Not for production: it keeps no persistence across restarts and has no shared subscriptions. Run it as
``python -m footfall.embedded_broker --port 1883``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging


async def serve(port: int) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "sys_interval": 0,
        "auth": {"allow-anonymous": True},
    }
    broker = Broker(config)
    await broker.start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
