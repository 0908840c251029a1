"""One `since` answer for every screen asking the same question at about the same time.

After a server restart (a deploy, a crash) every screen of the county reconnects within seconds
and asks `since` from where it was: the same sequence number, in the same scope, a thousand
times. Each answer is a query, a page of wire dicts and a pooled database connection; a thousand
of them at once queued for the pool past its timeout and failed (measured: the reconnect storm of
`make bench-load`). Asked again within `fresh_s` of an answer, the same question (reader's scope,
seq, limit) gets that answer; asked while it is being computed, it waits for it.

A shared answer must still be a true one for its reader. It holds every change committed after
`seq` up to its `last_seq` (read when it was computed); a change committed after that reaches the
reader live only if the reader was in its rooms by then. So an answer is shared only with readers
who joined their rooms before it began (`joined`, from the same clock); anyone else gets an answer
of their own. (Handing a screen an empty page computed before it joined lost the reports committed
in between: measured in the storm, and the reason for this rule.) At most `concurrent` answers are
computed at once, below the database pool's size: more readers than that wait their turn instead
of timing out in the pool.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class _Answer:
    __slots__ = ("ready", "value", "error", "started", "at")

    def __init__(self, started: float) -> None:
        self.ready = threading.Event()
        self.value: dict | None = None
        self.error: BaseException | None = None
        self.started = started  # before the answer's first read
        self.at = 0.0  # when it was ready


class SharedSince:
    """`compute(key)` once for the readers asking `key` who joined before it began, within
    `fresh_s` of its answer.

    Keys are whatever determines the answer, e.g. (scope, seq, limit). Answers are handed out as
    they are (readers must not change them). `clock` is what `joined` times are read from. The
    threading primitives are gevent's when serving on gevent (the standard library is patched
    before this module loads).
    """

    def __init__(self, compute: Callable[[Hashable], dict], *, fresh_s: float = 1.0,
                 concurrent: int = 4, max_answers: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._compute = compute
        self._fresh_s = fresh_s
        self._max_answers = max_answers
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: OrderedDict[Hashable, _Answer] = OrderedDict()
        self._slots = threading.BoundedSemaphore(concurrent)
        self.computed = 0  # answers computed (the rest were shared)
        self.asked = 0

    def clock(self) -> float:
        """Now, on the clock `joined` times are compared with."""
        return self._clock()

    def __call__(self, key: Hashable, joined: float) -> dict:
        """The answer to `key` for a reader who joined its rooms at `joined` (see `clock`)."""
        with self._lock:
            self.asked += 1
            answer = self._answers.get(key)
            if answer is not None and answer.started > joined and (
                    not answer.ready.is_set() or self._clock() - answer.at <= self._fresh_s):
                mine = False
            else:
                answer = self._answers[key] = _Answer(self._clock())
                mine = True
            self._answers.move_to_end(key)
            while len(self._answers) > self._max_answers:
                self._answers.popitem(last=False)
        if mine:
            self._fill(key, answer)
        else:
            answer.ready.wait()
        if answer.error is not None:
            raise answer.error
        return answer.value

    def _fill(self, key: Hashable, answer: _Answer) -> None:
        try:
            with self._slots:
                answer.value = self._compute(key)
                self.computed += 1
        except BaseException as err:  # every waiter gets the error; the next asker computes anew
            answer.error = err
            with self._lock:
                if self._answers.get(key) is answer:
                    del self._answers[key]
            raise
        finally:
            answer.at = self._clock()
            answer.ready.set()
