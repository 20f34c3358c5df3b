"""The always-connected notification channel, `/ws/notifications/`.

    publish    what the match services call after each change (best effort)
    events     the payloads, their audiences and the group names
    backends   how an event reaches the sockets: direct to Redis, or outbox + relay
    models     the outbox table
    consumers  the WebSocket consumer: auth result, replay on connect, watch
    auth       session cookie / API token, and the browser origin check
    routing    the WebSocket application mounted by `arena.asgi`
"""
