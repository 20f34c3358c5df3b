"""The Celery task a game host runs. Only its name is shared with the web side
(`send_task(LAUNCH_TASK, ...)`): the web processes never import this module."""
from __future__ import annotations

from arena.fleet.celery import LAUNCH_TASK, app


@app.task(name=LAUNCH_TASK)
def launch(match: dict, host_name: str) -> dict:
    from arena.fleet.agent import launch_here

    return launch_here(match, host_name)
