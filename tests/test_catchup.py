"""SharedSince: one `since` answer for readers asking the same question at about the same time."""

import threading

import pytest

from command.incidents.catchup import SharedSince


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_same_question_within_the_freshness_gets_the_same_answer():
    clock, asked = Clock(), []

    def compute(key):
        asked.append(key)
        return {"items": [len(asked)], "last_seq": 7}

    shared = SharedSince(compute, fresh_s=1.0, clock=clock)
    joined = clock.now - 5
    first = shared(("county", 5, 1000), joined)
    clock.now += 0.9
    assert shared(("county", 5, 1000), joined) is first
    assert shared(("county", 6, 1000), joined) == {"items": [2], "last_seq": 7}  # another seq
    clock.now += 0.2  # the first answer is 1.1 s old now
    assert shared(("county", 5, 1000), joined) == {"items": [3], "last_seq": 7}
    assert asked == [("county", 5, 1000), ("county", 6, 1000), ("county", 5, 1000)]
    assert (shared.asked, shared.computed) == (4, 3)


def test_an_answer_is_shared_only_with_readers_who_joined_before_it_began():
    """A change committed after an answer's read reaches a reader live only if the reader was in
    its rooms by then: a later reader gets an answer of its own."""
    clock, asked = Clock(), []
    shared = SharedSince(lambda key: asked.append(key) or {"n": len(asked)}, clock=clock)
    early = clock.now - 1
    first = shared("k", early)
    clock.now += 0.1
    late = clock.now  # joined after the first answer began
    clock.now += 0.1
    second = shared("k", late)
    assert second is not first and second == {"n": 2}
    assert shared("k", early) is second and shared("k", late) is second
    assert shared("k", clock.now) is not second  # joined at the instant it began: not shared


def test_readers_asking_while_it_is_computed_wait_for_that_answer():
    started, release, calls = threading.Event(), threading.Event(), []

    def compute(key):
        calls.append(key)
        started.set()
        release.wait(5)
        return {"items": ["x"], "last_seq": 1}

    shared = SharedSince(compute)
    answers = []
    first = threading.Thread(target=lambda: answers.append(shared("k", 0.0)))
    first.start()
    assert started.wait(5)
    others = [threading.Thread(target=lambda: answers.append(shared("k", 0.0)))
              for _ in range(20)]
    for t in others:
        t.start()
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert calls == ["k"]
    assert len(answers) == 21 and all(a is answers[0] for a in answers)


def test_at_most_concurrent_answers_are_computed_at_once():
    lock, running, most = threading.Lock(), [0], [0]
    release = threading.Event()

    def compute(key):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(0.05)
        with lock:
            running[0] -= 1
        return {"items": [], "last_seq": key}

    shared = SharedSince(compute, concurrent=3)
    threads = [threading.Thread(target=shared, args=(k, 0.0)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert shared.computed == 12 and most[0] == 3


def test_a_failed_answer_fails_its_waiters_and_is_not_kept():
    started, release, calls = threading.Event(), threading.Event(), []

    def compute(key):
        calls.append(key)
        if len(calls) == 1:
            started.set()
            release.wait(5)
            raise TimeoutError("pool timed out")
        return {"items": [], "last_seq": 3}

    shared = SharedSince(compute)
    errors = []

    def ask():
        try:
            shared("k", 0.0)
        except TimeoutError as err:
            errors.append(err)

    first = threading.Thread(target=ask)
    first.start()
    assert started.wait(5)
    waiter = threading.Thread(target=ask)
    waiter.start()
    release.set()
    first.join(5)
    waiter.join(5)
    assert len(errors) == 2
    assert shared("k", 0.0) == {"items": [], "last_seq": 3}  # asked again: computed anew
    assert len(calls) == 2


def test_old_answers_are_dropped_beyond_the_limit():
    shared = SharedSince(lambda key: {"items": [key]}, max_answers=3)
    for k in range(10):
        shared(k, 0.0)
    assert len(shared._answers) == 3
    with pytest.raises(TypeError):
        shared([1], 0.0)  # an unhashable key is a programming error, not a shared answer
