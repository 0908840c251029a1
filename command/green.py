"""gevent for the serving commands: the standard library patched before anything else loads.

`cmdcenter serve` and `cmdcenter demo` run on gevent (one hub, a greenlet per connection);
every other command, and the tests that import the app in-process, keep plain threads. The
patch must come before any module that keeps a reference to `socket`, `threading`, `ssl` …, so
`command.cli` asks for it on its first lines, with nothing but `sys` imported.
"""

from __future__ import annotations

import os
import sys

SERVING = ("serve", "demo")


def command_of(argv: list[str]) -> str | None:
    """The subcommand named in a `cmdcenter` argument list (options before it skipped)."""
    args = iter(argv)
    for arg in args:
        if arg == "--data-dir":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def patch_for_serving(argv: list[str] | None = None) -> bool:
    """Monkey-patch the standard library for gevent when the command line serves; say whether.

    Only for a process started as `cmdcenter` or `python -m command.cli` (not when the module is
    imported by another program).
    """
    if argv is None:
        started_as = os.path.basename(sys.argv[0]) if sys.argv else ""
        if started_as not in ("cmdcenter", "cli.py"):
            return False
        argv = sys.argv[1:]
    if command_of(argv) not in SERVING:
        return False
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        global _HUB_THREAD
        _HUB_THREAD = monkey.get_original("_thread", "get_ident")()
        monkey.patch_all()
    return True


_HUB_THREAD: int | None = None  # the native thread that runs the hub, once patched


def active() -> bool:
    """Whether this process runs on gevent (the standard library patched)."""
    if "gevent.monkey" not in sys.modules:
        return False
    from gevent import monkey

    return monkey.is_module_patched("socket")


def pause(seconds: float) -> None:
    """Sleep without holding up anyone else: on the hub's thread other greenlets run meanwhile;
    on any other thread (a native worker of `offload`, or when not serving) a plain sleep."""
    if active() and _HUB_THREAD is not None:
        from gevent import monkey

        if monkey.get_original("_thread", "get_ident")() == _HUB_THREAD:
            import gevent

            gevent.sleep(seconds)
            return
        monkey.get_original("time", "sleep")(seconds)
        return
    import time

    time.sleep(seconds)


def offload(fn, *args):
    """`fn(*args)` on one of gevent's native threads when serving on gevent, else right here.

    For work that blocks in C without yielding to the hub: SQLite's file I/O (a checkpoint's
    fsync on a busy disk stalls every connection of the process otherwise) and CPU-heavy
    library code. The calling greenlet waits; the others keep running. Code run this way must
    not use sockets made in the hub's thread (Redis connections): gevent ties them to it.
    """
    if not active():
        return fn(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(fn, args)
