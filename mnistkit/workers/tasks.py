"""What a worker process runs: a class of tasks, one method each, and how a request for one
crosses the pipe, with the errors it raises.

A worker is given a :class:`Tasks` subclass (``mnistkit.score.model_tasks.ModelTasks``, say):
the class is made once in the worker, and ``Worker.call(ModelTasks.score, ...)`` runs that
method there. The caller names the method by the function itself, never by a string, so that
a reader (and a static tool) goes from the call to the code it runs, and a type checker holds
the arguments against the method's signature.

The errors a class declares cross the pipe as themselves: the worker sends the exception's
type name and its message, the parent raises the same type again with that message. Nothing
else is taken from a failed call: an exception object made in the worker (where a hostile
file may have run) is never unpickled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar


class Tasks:
    """The base of every class whose methods a worker runs.

    ``failure`` is the error that a call raises when the worker itself fails (it dies, gives
    no answer in time, runs out of memory), ``errors`` the other errors of the tasks' own that
    cross the pipe as themselves. Any other exception is worded by :meth:`unexpected` and
    raised as ``failure``."""

    failure: ClassVar[type[Exception]]
    errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, setup: object = None) -> None:
        """Made once in the worker, before its memory limit applies: ``setup`` is what the
        parent gave the ``Worker``."""

    @staticmethod
    def unexpected(error: Exception) -> str:
        """An exception the tasks do not declare, in one line."""
        return "failed to run: " + (" ".join(str(error).split()) or type(error).__name__)


def task_name(tasks: type[Tasks], task: Callable) -> str:
    """The name a request sends for ``task``: a public method of ``tasks`` or of a class it
    derives from (a subclass's override then runs, as a method call would). TypeError for
    anything else, before the request leaves."""
    name = getattr(task, "__name__", "")
    if name.startswith("_") or not any(
            cls is not Tasks and getattr(cls, name, None) is task for cls in tasks.__mro__):
        raise TypeError(f"{task!r} is not a task of {tasks.__name__}")
    return name


def _crossing(tasks: type[Tasks]) -> dict[str, type[Exception]]:
    return {error.__name__: error for error in (tasks.failure, *tasks.errors)}


def error_words(tasks: type[Tasks], error: Exception) -> tuple[str, str]:
    """In the worker: what crosses the pipe for ``error``, its declared type's name and its
    message."""
    for name, kind in _crossing(tasks).items():
        if isinstance(error, kind):
            return name, str(error)
    return tasks.failure.__name__, tasks.unexpected(error)


def error_from_words(tasks: type[Tasks], name: str, message: str) -> Exception:
    """In the parent: the error the worker sent, as the declared type it named (``failure``
    for a name the tasks do not declare)."""
    return _crossing(tasks).get(name, tasks.failure)(message)
