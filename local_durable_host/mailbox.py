"""The engine's queued messages (one FIFO), messages not visible yet, and durable timers."""

import heapq
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from local_durable_host.work import (
    EntityWork,
    InstanceRecord,
    StartExecution,
    Timer,
    Work,
)

_GUID_NAMESPACE = uuid.UUID("5d2c3f4e-8a59-4c1e-9a7b-0d6f1e2a3b4c")


class MailboxLog(Protocol):
    """Where the mailbox writes each change as it makes it (the durable store)."""

    def message_queued(self, seq: int, work: Work, visible_at: datetime | None) -> None: ...

    def messages_taken(self, seqs: list[int]) -> None: ...

    def message_moved(self, seq: int, new_seq: int) -> None: ...

    def timer_started(self, timer: Timer) -> None: ...

    def timer_taken(self, sequence: int) -> None: ...

    def timers_dropped(self, execution_id: str) -> None: ...

    def counter_moved(self, value: int) -> None: ...


@dataclass(frozen=True)
class Taken:
    """Messages and a timer taken from the mailbox for one step, still in the store.

    They leave the store with the step's outcome (`Mailbox.acknowledge`, in the same change),
    so the engine can run the step's app code without holding the state: a commit made
    meanwhile (a client's request) holds them as not yet handled, and a kill before the
    outcome is written delivers them again, as a queue message whose work item was not
    completed is delivered again on the real host.
    """

    messages: tuple[int, ...] = ()
    timer: int | None = None


# (entity name, key, calling instance): the order DTFx keeps between one sender and an entity.
_SenderLane = tuple[str, str, str]


@dataclass
class _Waiting:
    """A sender's operations to one entity waiting to be delivered again: how many, and
    until when at the latest."""

    count: int
    until: datetime


class Mailbox:
    """Queued messages (one FIFO for everything), messages not yet visible, durable timers.

    Every operation is O(log n) or O(1) in the number of messages and timers, except
    `take_entity_batch`, which is linear in the batch it takes. Removed entries are dropped
    from the FIFO and the heaps lazily, when they reach the front.
    """

    def __init__(self, log: MailboxLog) -> None:
        self._log = log
        # FIFO of sequence numbers; a number no longer in _queued was taken out of turn.
        self._order: deque[int] = deque()
        self._queued: dict[int, Work] = {}
        self._by_entity: dict[tuple[str, str], deque[int]] = {}
        self._starts: Counter[str] = Counter()
        # Numbers only grow at the back and only shrink at the front: the store orders by them.
        self._back = 0
        self._front = 0
        self._invisible: list[tuple[datetime, int]] = []
        self._delayed: dict[int, tuple[datetime, Work]] = {}
        self._backed_off: dict[_SenderLane, _Waiting] = {}
        self._timer_heap: list[tuple[datetime, int]] = []
        self._timers: dict[int, Timer] = {}
        self._timers_by_execution: dict[str, set[int]] = {}
        self._counter = 0

    def restore(
        self,
        messages: list[tuple[int, Work, datetime | None]],
        timers: list[Timer],
        counter: int,
    ) -> None:
        """Take back what the store holds (in sequence order), without writing it again."""
        for seq, work, visible_at in messages:
            self._back = max(self._back, seq)
            self._front = min(self._front, seq)
            if visible_at is None:
                self._enqueue(seq, work, first=False)
            else:
                self._delay(seq, work, visible_at)
        for timer in timers:
            self._add_timer(timer)
        self._counter = counter

    def __len__(self) -> int:
        """Messages that can be taken now (not those waiting to become visible)."""
        return len(self._queued)

    # -- the queue -------------------------------------------------------------------------

    def send(self, work: Work, *, first: bool = False) -> None:
        """Queue at the back, or at the front for what must happen next (continue-as-new)."""
        if first:
            self._front -= 1
            seq = self._front
        else:
            self._back += 1
            seq = self._back
        self._enqueue(seq, work, first=first)
        self._log.message_queued(seq, work, None)

    def send_later(self, work: Work, visible_at: datetime) -> None:
        """Queue `work` to be taken from `visible_at` on (a queue message's visibility delay)."""
        self._back += 1
        self._delay(self._back, work, visible_at)
        self._log.message_queued(self._back, work, visible_at)

    def take(self) -> tuple[int, Work] | None:
        """The message at the front and its sequence number, removed from the queue (in the
        store until acknowledged)."""
        while self._order:
            seq = self._order.popleft()
            work = self._queued.pop(seq, None)
            if work is None:
                continue  # taken out of turn with an entity batch
            if isinstance(work, EntityWork):
                lane = self._by_entity[(work.name, work.key)]
                head = lane.popleft()
                assert head == seq, "an entity's lane is in FIFO order"
                if not lane:
                    del self._by_entity[(work.name, work.key)]
            elif isinstance(work, StartExecution):
                self._forget_start(work.instance_id)
            return seq, work
        return None

    def acknowledge(self, taken: Taken) -> None:
        """What a step took is handled: it leaves the store with the step's outcome."""
        if taken.messages:
            self._log.messages_taken(list(taken.messages))
        if taken.timer is not None:
            self._log.timer_taken(taken.timer)

    def take_entity_batch(
        self, first_seq: int, first: EntityWork
    ) -> tuple[list[EntityWork], Taken]:
        """`first` (already taken) and every queued operation for the same entity, in enqueue
        order, with what to acknowledge once the batch is handled. An operation whose sender
        has an earlier one to this entity waiting to be delivered again is queued again
        behind it instead (see `backed_off_until`)."""
        seqs = self._by_entity.pop((first.name, first.key), deque())
        batch: list[EntityWork] = []
        handled: list[int] = []
        for seq, work in [(first_seq, first), *((seq, self._queued.pop(seq)) for seq in seqs)]:
            assert isinstance(work, EntityWork)
            until = self.backed_off_until(work)
            if until is None:
                batch.append(work)
                handled.append(seq)
            else:
                self._log.messages_taken([seq])
                self.send_later(work, until)
        return batch, Taken(messages=tuple(handled))

    def backed_off_until(self, work: EntityWork) -> datetime | None:
        """When its sender's earlier operations to the same entity are visible again, if any
        wait: DTFx's entity message sorter delivers one sender's operations in send order."""
        if work.caller_instance_id is None:
            return None  # a client's signals carry no order
        waiting = self._backed_off.get((work.name, work.key, work.caller_instance_id))
        return None if waiting is None else waiting.until

    def has_start_for(self, instance_id: str) -> bool:
        return instance_id in self._starts

    def release_due(self, now: datetime) -> None:
        """Queue (at the back, in visibility order) every delayed message visible at `now`."""
        while self._invisible and self._invisible[0][0] <= now:
            _, seq = heapq.heappop(self._invisible)
            _, work = self._delayed.pop(seq)
            self._release_lane(work)
            self._back += 1
            self._enqueue(self._back, work, first=False)
            self._log.message_moved(seq, self._back)

    def delayed(self) -> list[tuple[datetime, Work]]:
        """Messages not visible yet, earliest first."""
        return sorted(self._delayed.values(), key=lambda item: item[0])

    # -- timers ----------------------------------------------------------------------------

    def start_timer(self, instance: InstanceRecord, timer_id: int, fire_at: datetime) -> None:
        timer = Timer(
            fire_at, self._next_number(), instance.instance_id, instance.execution_id, timer_id
        )
        self._add_timer(timer)
        self._log.timer_started(timer)

    def drop_timers(self, execution_id: str) -> None:
        # A finished execution's timers would be dropped on arrival; drop them now instead.
        sequences = self._timers_by_execution.pop(execution_id, None)
        if sequences:
            for sequence in sequences:
                del self._timers[sequence]
            self._log.timers_dropped(execution_id)
            self._compact_timers()

    def due_timer(self, now: datetime) -> Timer | None:
        """The timer take_due_timer(now) would take, left in place."""
        timer = self._first_timer()
        return timer if timer is not None and timer.fire_at <= now else None

    def take_due_timer(self, now: datetime) -> Timer | None:
        """The earliest timer due at `now` (creation order breaks ties), removed (in the store
        until acknowledged)."""
        timer = self.due_timer(now)
        if timer is not None:
            heapq.heappop(self._timer_heap)
            del self._timers[timer.sequence]
            execution = self._timers_by_execution[timer.execution_id]
            execution.discard(timer.sequence)
            if not execution:
                del self._timers_by_execution[timer.execution_id]
        return timer

    def timers(self) -> list[Timer]:
        return sorted(self._timers.values(), key=lambda t: (t.fire_at, t.sequence))

    def next_due(self) -> datetime | None:
        """The earliest time a timer fires or a delayed message becomes visible."""
        timer = self._first_timer()
        moments = [timer.fire_at] if timer is not None else []
        if self._invisible:
            moments.append(self._invisible[0][0])
        return min(moments, default=None)

    def has_due(self, now: datetime) -> bool:
        due = self.next_due()
        return due is not None and due <= now

    def new_guid(self) -> uuid.UUID:
        # Deterministic, so two runs of a test see the same ids; the store keeps the counter.
        return uuid.uuid5(_GUID_NAMESPACE, str(self._next_number()))

    # -- bookkeeping -----------------------------------------------------------------------

    def _next_number(self) -> int:
        self._counter += 1
        self._log.counter_moved(self._counter)
        return self._counter

    def _enqueue(self, seq: int, work: Work, *, first: bool) -> None:
        self._queued[seq] = work
        if first:
            # Only starts and restarted activities go to the front, never entity operations,
            # so each entity's lane stays in FIFO order.
            assert not isinstance(work, EntityWork)
            self._order.appendleft(seq)
        else:
            self._order.append(seq)
        if isinstance(work, EntityWork):
            self._by_entity.setdefault((work.name, work.key), deque()).append(seq)
        elif isinstance(work, StartExecution):
            self._starts[work.instance_id] += 1

    def _delay(self, seq: int, work: Work, visible_at: datetime) -> None:
        self._delayed[seq] = (visible_at, work)
        heapq.heappush(self._invisible, (visible_at, seq))
        if isinstance(work, EntityWork) and work.caller_instance_id is not None:
            waiting = self._backed_off.setdefault(
                (work.name, work.key, work.caller_instance_id), _Waiting(0, visible_at)
            )
            waiting.count += 1
            waiting.until = max(waiting.until, visible_at)

    def _release_lane(self, work: Work) -> None:
        if isinstance(work, EntityWork) and work.caller_instance_id is not None:
            lane = (work.name, work.key, work.caller_instance_id)
            self._backed_off[lane].count -= 1
            if not self._backed_off[lane].count:
                del self._backed_off[lane]

    def _forget_start(self, instance_id: str) -> None:
        self._starts[instance_id] -= 1
        if not self._starts[instance_id]:
            del self._starts[instance_id]

    def _add_timer(self, timer: Timer) -> None:
        self._timers[timer.sequence] = timer
        self._timers_by_execution.setdefault(timer.execution_id, set()).add(timer.sequence)
        heapq.heappush(self._timer_heap, (timer.fire_at, timer.sequence))

    def _first_timer(self) -> Timer | None:
        while self._timer_heap:
            timer = self._timers.get(self._timer_heap[0][1])
            if timer is not None:
                return timer
            heapq.heappop(self._timer_heap)
        return None

    def _compact_timers(self) -> None:
        # Dropped timers stay in the heap until they reach its top; rebuild it when they are
        # most of it, so long timers of finished executions do not pile up.
        if len(self._timer_heap) > 64 and len(self._timer_heap) > 2 * len(self._timers):
            self._timer_heap = [(t.fire_at, t.sequence) for t in self._timers.values()]
            heapq.heapify(self._timer_heap)
