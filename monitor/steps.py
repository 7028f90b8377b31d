"""The monitor's steps, once: name, work, cadence, queue, locks and what follows each.

``simmim monitor once`` runs the cycle's steps in this order; ``simmim monitor run``
(APScheduler) clocks every step that has a cadence and runs its followers right after it;
``simmim worker`` makes each clocked step a Procrastinate periodic task on its queue and
defers the followers' tasks. Detection and notification are two steps everywhere (two
JobRun rows): a failing mail server never reads as a failed detection.

The work is late-bound (``lambda runtime: runtime.crawl()``), so a runtime that replaces
a step (tests, a deployment's subclass) is the one that runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from simmim.settings import Settings


class Runtime(Protocol):
    """What the table's work calls: ``monitor.cycle.Runtime`` (which imports this table,
    so the table names only the methods it needs)."""

    def crawl(self) -> dict[str, Any]: ...
    def index(self) -> dict[str, Any]: ...
    def score(self) -> dict[str, Any]: ...
    def detect(self) -> dict[str, Any]: ...
    def notify(self) -> dict[str, Any]: ...
    def fusion(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Step:
    name: str  # its JobRun rows and run lock
    work: Callable[[Runtime], dict[str, Any]]  # in one process (scheduler, monitor once)
    every: Callable[[Settings], int | None] | None  # cadence (None: only after another step)
    queue: str  # the workers' queue
    task: str  # the workers' task name (periodic for clocked steps)
    task_lock: str  # one run of the task at a time across workers, one waiting copy
    plans: bool = False  # the workers' task fans the work out instead (no run lock of its own)
    own_lock: bool = False  # the work takes its run lock itself (the outbox's one sender)
    retry: bool = True  # a failed task is retried (planners wait for their next tick)
    follows: str | None = None  # runs right after that step
    in_cycle: bool = True  # part of `monitor once`


def _monitor_every(name: str) -> Callable[[Settings], int | None]:
    return lambda settings: int(getattr(settings.monitor, f"{name}_every_s"))


def _fusion_every(settings: Settings) -> int | None:
    return settings.fusion.every_s if settings.fusion.self_train else None


TABLE: tuple[Step, ...] = (
    Step(
        "crawl",
        lambda r: r.crawl(),
        _monitor_every("crawl"),
        queue="crawl",
        task="plan_crawl",
        task_lock="plan_crawl",
        plans=True,
        retry=False,
    ),
    Step(
        "index",
        lambda r: r.index(),
        _monitor_every("index"),
        queue="index",
        task="plan_index",
        task_lock="plan_index",
        plans=True,
        retry=False,
    ),
    Step("score", lambda r: r.score(), _monitor_every("score"), "score", "score", "score"),
    Step("detect", lambda r: r.detect(), _monitor_every("detect"), "notify", "detect", "detect"),
    Step(
        "notify",
        lambda r: r.notify(),
        None,
        queue="notify",
        task="send_outbox",
        task_lock="notify",
        own_lock=True,
        follows="detect",
    ),
    Step(
        "fusion",
        lambda r: r.fusion(),
        _fusion_every,
        queue="index",
        task="self_train_fusion",
        task_lock="fusion",
        retry=False,
        in_cycle=False,
    ),
)
BY_NAME = {step.name: step for step in TABLE}
CYCLE = tuple(step.name for step in TABLE if step.in_cycle)  # `monitor once`, in order


def step(name: str) -> Step:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"no monitor step {name!r}; the steps: {', '.join(BY_NAME)}") from None


def scheduled(settings: Settings) -> dict[str, int]:
    """Every clocked step and its period in seconds (self-training only when on)."""
    out = {}
    for row in TABLE:
        seconds = row.every(settings) if row.every is not None else None
        if seconds is not None:
            out[row.name] = seconds
    return out


def followers(name: str) -> list[Step]:
    return [row for row in TABLE if row.follows == name]
