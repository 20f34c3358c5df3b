"""Prometheus metrics of Arena: what they are, where they are served, who may read them.

* `definitions` - every metric, in one module (names, labels, buckets). It imports
  nothing of Arena's but the settings, so any room may count into it.
* `multiprocess` - the per-machine directory every Arena process writes its
  figures to (prometheus_client's multiprocess mode), and the collector that sums
  them: one scrape of a machine sees every process and match on it.
* `views` - `/metrics` of the web processes; `access` - who may read it;
  `exporter` - the same page served by `manage.py gamehost` on a port of its own;
  `collectors` - figures read from the database at scrape time (live matches).

Off with ``ARENA_METRICS=0``: nothing is counted and nothing is served.
"""
