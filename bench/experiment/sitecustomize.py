"""Benchmark-only: try a proposed change to the game server without editing it.

When a benchmark starts its web server with this directory on PYTHONPATH and
`ARENA_BENCH_PATCH=direct_broadcast`, every game server it launches (plain or
forked by the zygote) gets `bench.experiment.direct_broadcast.apply()` applied to
`arena.gameserver.session` as soon as that module is imported. Without the
variable this file does nothing.
"""
import os
import sys

if os.environ.get("ARENA_BENCH_PATCH") == "direct_broadcast":
    import importlib.abc
    import importlib.util

    class _PatchOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "arena.gameserver.session":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                from bench.experiment import direct_broadcast

                direct_broadcast.apply(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _PatchOnImport())
