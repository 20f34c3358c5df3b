"""The fleet: game servers on many machines ("game hosts"), fed through Celery.

A game host runs `manage.py gamehost --name NAME`: a Celery worker consuming only
its own queue (`gamehost.NAME`), launching with its local warm launcher, and a
heartbeat into `GameHost`. The web side's `FleetLauncher`
(`GAME_SERVER_LAUNCHER=fleet`) picks a host by free capacity and sends it the
launch; `manage.py supervise` fails the matches of hosts whose heartbeat stopped.
This room sits above arena.matches: it calls its services, never the reverse.
"""
