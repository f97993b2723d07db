"""A site switched to counts-only while its agent runs, and back to full (issue #18): the real agent on a live
camera, a real mosquitto, the server, its API.

After the switch the agent says counts-only in its status and runs no classifier, its aggregates carry no
gender, people are still counted, and the API shows no gender figures for what was counted meanwhile (null, not
zero); back in full the classifier is loaded again and gender is counted again.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from footfall.broker import MosquittoBroker
from tests.e2e.conftest import AGENT, CAMERA, SITE, ZONE, Product, run
from tests.e2e.live_camera import LiveCamera
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.timeout(420)]


def at(camera: LiveCamera, seconds: float) -> None:
    """Until the playlist has shown ``seconds`` (the camera's clock, which holds stop)."""
    wait_until(lambda: camera.elapsed() >= seconds, timeout=seconds + 120)


def set_mode(product: Product, admin_key: str, mode: str) -> dict[str, Any]:
    port = next(p for p, process in product.servers.values() if process is not None)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/sites/{SITE}",
        data=json.dumps({"demographics": mode}).encode(),
        headers={"X-API-Key": admin_key, "Content-Type": "application/json"},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def agent_row(product: Product) -> dict[str, Any]:
    return next((a for a in product.get("/api/v1/agents") or [] if a["agent_id"] == AGENT), {})


def classifies(row: dict[str, Any]) -> bool:
    return any(model["task"] == "gender-classification" for model in row.get("models", []))


def totals(product: Product) -> dict[str, Any]:
    answer = product.get(f"/api/v1/sites/{SITE}/traffic/totals")
    assert answer is not None
    counts: dict[str, Any] = answer["totals"]
    return counts


def agent_counted(product: Product) -> dict[str, int]:
    """What the agent counted into its zone (its per-bucket state; the camera's distinct visitors, kept beside
    them under the camera's id, are another measure)."""
    with sqlite3.connect(product.outbox) as db:
        row = db.execute(
            "SELECT SUM(people), SUM(female), SUM(male), SUM(unknown) FROM bucket_state WHERE bucket_key LIKE ?",
            (f"{CAMERA}/{ZONE}/%",),
        ).fetchone()
    return dict(zip(("people", "female", "male", "unknown"), (value or 0 for value in row), strict=True))


def delivered(product: Product) -> bool:
    """The server holds what the agent has counted so far."""
    return product.server_totals() == agent_counted(product)


def test_a_site_switched_to_counts_only_and_back_while_its_agent_runs(
    tmp_path: Path, mosquitto: MosquittoBroker, walkby_playlist: tuple[list, int]
) -> None:
    clips = [item for item in walkby_playlist[0] if isinstance(item, Path)]
    # The first clip is watched in counts-only, the second in full again; the corridor is held empty between.
    camera = LiveCamera([clips[0], 3.0, clips[1], 3.0])
    product = Product(tmp_path, f"sqlite:///{tmp_path / 'server.db'}", camera.url, mosquitto)
    admin_key = run("keys", "create", "--role", "admin", "--name", "e2e-admin", env=product.env)
    try:
        product.start_server()
        product.start_agent()
        wait_until(lambda: agent_row(product).get("online", False) and classifies(agent_row(product)), 90)
        assert agent_row(product)["demographics"] == "full"
        camera.start()
        camera.hold()  # the corridor before anyone comes
        wait_until(lambda: product.agent_log_count("camera online") > 0, 60)

        # counts-only while the agent runs
        assert set_mode(product, admin_key, "counts-only")["demographics"] == "counts-only"
        wait_until(lambda: agent_row(product).get("demographics") == "counts-only", 30)
        assert not classifies(agent_row(product)), "a counts-only agent serves no classifier"
        camera.release()
        at(camera, camera.marks[1] + 3)  # the first clip's last face has been gone longer than a track is kept
        camera.hold()
        held_at = time.time()
        wait_until(lambda: product.agent_stored(held_at), 90)
        wait_until(lambda: delivered(product), 60)
        counted = agent_counted(product)
        assert counted["people"] >= 3, counted  # people counts go on
        assert counted["female"] == counted["male"] == 0, "nobody was classified in counts-only"
        shown = totals(product)
        assert shown["people"] == counted["people"] and shown["unknown"] == counted["people"]
        assert (shown["female"], shown["male"], shown["female_share"], shown["male_share"]) == (None,) * 4, shown

        # back to full: the classifier is loaded again and gender is counted again
        assert set_mode(product, admin_key, "full")["demographics"] == "full"
        wait_until(lambda: agent_row(product).get("demographics") == "full" and classifies(agent_row(product)), 60)
        camera.release()
        at(camera, camera.duration)
        assert product.stop_agent() == 0, "the agent stopped with aggregates left in its outbox"
        wait_until(lambda: delivered(product), 60)
        final = totals(product)
        assert final["people"] > counted["people"]
        assert (final["female"] or 0) + (final["male"] or 0) > 0, final
        assert final["unknown"] >= counted["people"], "what counts-only counted stays unclassified"
    finally:
        product.stop()
        camera.stop()
    applied = [
        line for line in (tmp_path / "agent.log").read_text().splitlines() if "demographics mode applied" in line
    ]
    assert [line.split("mode=")[1].split()[0] for line in applied] == ["counts-only", "full"], applied
    assert "Traceback" not in (tmp_path / "agent.log").read_text()
