"""Arena's demo site: what only `make demo` needs (demo users, the `demo` command).

Listed in INSTALLED_APPS by `arena.settings` alone; a host project leaves it out.
"""
