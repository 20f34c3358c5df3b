"""`python -m bench.cow`: what a forked game server's private memory holds.

This process becomes a zygote exactly as the warm launcher's does
(`warmup.become_zygote()`), but first records which object lives on which page
of its heap. It then forks one game server through `Zygote.fork` (the real child
path) for a match of two bench players and reads the child's page map
(`/proc/<pid>/pagemap`) at three moments: its `Port:` line, 1.5 s later (its
session has started: heartbeat, database thread), and after 4 s of play with two
lean players. Every page the child holds alone (copied on write, or new) is
counted under the kind of object that fills most of it in the zygote; pages
that held no zygote object are "new" (the child's own allocations).

CPython 3.11 writes a reference count (and, for code, warm-up counters) into
every object it uses, so what the table shows is mostly the zygote's objects the
child merely touched.
"""
from __future__ import annotations

import gc

gc.disable()  # as the zygote does from its first line: start-up objects packed densely

import argparse  # noqa: E402
import collections  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from bench.common import bench_env, bench_run, insert_match, prepare_database, save_result, table  # noqa: E402
from bench.load import LoadGenerator  # noqa: E402
from bench.memory import memory_of  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
NEW = "new (no zygote object)"


def object_pages() -> dict[int, str]:
    """page address -> the type whose objects take most bytes of that page."""
    seen: dict[int, object] = {}
    stack: list = list(sys.modules.values()) + gc.get_objects()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen[id(obj)] = obj
        stack.extend(gc.get_referents(obj))
    weight: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for address, obj in seen.items():
        try:
            size = sys.getsizeof(obj)
        except TypeError:
            size = 16
        weight[address // PAGE * PAGE][type(obj).__name__] += size
    return {page: counts.most_common(1)[0][0] for page, counts in weight.items()}


def private_pages(pid: int) -> set[int]:
    """Present pages of `pid`'s writable anonymous mappings that only it maps."""
    regions = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            parts = line.split()
            name = parts[5] if len(parts) > 5 else ""
            if name in ("", "[heap]") and parts[1].startswith("rw"):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                regions.append((lo, hi))
    found = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for lo, hi in regions:
            pagemap.seek(lo // PAGE * 8)
            entries = pagemap.read((hi - lo) // PAGE * 8)
            for i, (entry,) in enumerate(struct.iter_unpack("Q", entries)):
                if entry >> 63 & 1 and entry >> 56 & 1:  # present, exclusively mapped
                    found.add(lo + i * PAGE)
    return found


def uss_mib(pid: int) -> float:
    return memory_of([pid])[0]["uss"]


def classify(pages: set[int], index: dict[int, str]) -> collections.Counter:
    return collections.Counter(index.get(page, NEW) for page in pages)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    with bench_run("bench.cow"):
        accounts = prepare_database(2)
        os.environ.update(bench_env())
        from arena.gameserver import warmup, zygote
        from arena.gameserver.main import prepare

        prepare()
        from django.db import connections

        from arena.gameserver.store import load_match
        from arena.matches.launcher.base import read_port

        (name_a, token_a), (name_b, token_b) = accounts["players"][:2]
        info = load_match(str(insert_match([name_a, name_b], points_to_win=21).id))
        connections.close_all()
        index: dict[int, str] = {}
        warmup.become_zygote(inspect=lambda: index.update(object_pages()))

        control, _ = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        forker = zygote.Zygote(control, {sig: signal.SIG_DFL for sig in (signal.SIGTERM, signal.SIGINT)})
        read_fd, write_fd = os.pipe()
        log = os.open(os.environ["GAME_SERVER_LOG_DIR"] + "/cow.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        reply, _ = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = forker.fork(info, write_fd, log, reply)
        os.close(write_fd)
        os.close(log)
        moments: dict[str, tuple[set[int], float]] = {}
        load = LoadGenerator(1)
        try:
            port = read_port(read_fd, 10)
            moments["at its port line"] = (private_pages(pid), uss_mib(pid))
            time.sleep(1.5)
            moments["1.5 s later"] = (private_pages(pid), uss_mib(pid))
            load.connect([{"key": f"p{i}", "match": "m", "port": port, "token": token, "role": "player",
                           "behaviour": "follow"} for i, token in enumerate((token_a, token_b))])
            time.sleep(4)
            moments["4 s of play"] = (private_pages(pid), uss_mib(pid))
        finally:
            load.stop()
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)

    kinds = classify(moments["4 s of play"][0], index)
    names = [kind for kind, _ in kinds.most_common(args.top)]
    rows = []
    for kind in names + ["(all)"]:
        row = [kind]
        for pages, _ in moments.values():
            counts = classify(pages, index)
            count = sum(counts.values()) if kind == "(all)" else counts[kind]
            row.append(count * PAGE / 2**20)
        rows.append(row)
    rows.append(["USS (psutil)"] + [uss for _, uss in moments.values()])
    text = table(["main kind of object on the page"] + [f"{moment} MiB" for moment in moments], rows,
                 title="A forked game server's private pages, by what the zygote kept on them")
    print(text)
    data = {"table": text, "rows": rows, "moments": list(moments)}
    save_result("cow", data)
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
