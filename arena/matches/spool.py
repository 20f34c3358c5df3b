"""Results that could not reach the database, kept on disk until they can.

A game server that cannot save its result (the database is down) for
GAME_RESULT_RETRY_FOR seconds writes it here instead of losing it; the supervisor
imports the files later through the same services. The services' guarded status
changes make the import exactly-once: a result that did reach the database after
all is not applied twice.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from arena.conf import settings

logger = logging.getLogger("arena.spool")


def spool_dir() -> Path:
    return Path(settings.GAME_SPOOL_DIR)


def spool_write(match_id: str, action: str, **fields: Any) -> Path:
    """Durably store a result: written to a temporary file, synced, then renamed."""
    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    record = {"match_id": str(match_id), "action": action, **fields}
    path = directory / f"{match_id}.json"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def spool_import() -> list[str]:
    """Apply every spooled result; the match ids whose file was handled."""
    from arena.matches import services

    handled = []
    directory = spool_dir()
    if not directory.is_dir():
        return handled
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            finished_at = datetime.fromisoformat(record["finished_at"])
            # The replay travels with its result and is written in its transaction.
            replay = base64.b64decode(record["replay"], validate=True) if record.get("replay") else None
            if record["action"] == "finish":
                services.match_finish(
                    record["match_id"],
                    score=record["score"],
                    winner_side=record["winner_side"],
                    reason=record["reason"],
                    finished_at=finished_at,
                    host_name=record.get("host_name"),
                    replay=replay,
                )
            else:
                services.match_cancel(
                    record["match_id"],
                    reason=record["reason"],
                    score=record.get("score"),
                    finished_at=finished_at,
                    host_name=record.get("host_name"),
                    replay=replay,
                )
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            logger.error("unreadable spool file %s: %s", path, error)
            path.rename(path.with_suffix(".bad"))
            continue
        path.unlink()
        handled.append(record["match_id"])
        logger.info("imported the spooled result of match %s", record["match_id"])
    return handled
