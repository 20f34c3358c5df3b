"""The signed webhook: every match event POSTed to the host's `ARENA_WEBHOOK_URL`.

    outbox     the adapter `arena.matches.events` calls: one row per event, written
               in the transaction of the change it reports
    delivery   the signed POST, retries with backoff, the background sender
    signing    the signature scheme (and how a receiver checks it)
    models     the outbox table

Delivered at least once: a row is retried (with backoff, by the sender thread of
the process that wrote it, then by `manage.py supervise` or `manage.py
webhooks_deliver`, which survive restarts) until the receiver answers 2xx. A
receiver de-duplicates on `X-Arena-Event-Id`. See docs/integration.md.
"""
