"""Running independent pieces of work side by side in a request, each with its own
database connection.

A batch of matches (`services.matches_create`) spends most of each match's time
waiting: on the database (a dozen round trips per match) and on the launch (the
game server reaching its port, or a game host's answer). Done one after another
those waits add up; in a few threads they overlap, as they do for separate
requests, while the request's own cost is paid once.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.db import connections

T = TypeVar("T")
R = TypeVar("R")


def run_in_threads(work: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """`work(item)` for every item, in up to `workers` threads; the results in order.

    A single item runs in the calling thread (no thread, and its database
    connection is the caller's). Otherwise each thread takes the next item until
    none is left, then closes the database connections it opened (one per thread,
    not per item: a PostgreSQL connect costs milliseconds). `work` must not raise:
    an exception ends its thread's share of the work and is raised here once every
    thread has finished, so nothing is left running behind the caller.
    """
    if len(items) <= 1 or workers <= 1:
        return [work(item) for item in items]
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(items)):
        pending.put(index)
    results: list = [None] * len(items)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while not errors:
                try:
                    index = pending.get_nowait()
                except queue.Empty:
                    return
                results[index] = work(items[index])
        except BaseException as error:  # reported to the caller below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, name=f"arena-batch-{n}", daemon=True)
               for n in range(min(workers, len(items)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
