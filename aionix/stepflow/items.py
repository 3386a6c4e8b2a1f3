"""Each finished map item and parallel branch, made durable as it finishes (issue 24).

The engine checkpoints an execution's whole frame tree before anything acts outside it; a
map whose items all run at once therefore has one checkpoint with every item scheduled, and
nothing more until the map is over. Without more, a crash in between re-runs every item, the
finished ones too. So each child frame that finishes (succeeded or failed) is recorded here:
its result row and its own history events, in one small transaction. The rows of every child
that finished in the same turn of the event loop go in one transaction, and the store's
writer batches concurrent transactions into one COMMIT, so a map of 10,000 fast items costs
a few commits, not 10,000. A resume lays the rows over the snapshot: the finished children
are finished again and only the others run.

Consistency rules:

* Events keep a contiguous `seq`: the finished child's pending events are moved to the front
  of the pending list (renumbered) and written with its row; the rest follow in the next
  checkpoint. The execution's `next_seq` is raised past them in the same transaction.
* A map/parallel that starts its children anew (a retry of the state, a loop back into it)
  reuses their frame ids: its old rows are deleted in the checkpoint that first holds the new
  children (`Run.item_scopes`), and no row is written while such a deletion is still pending
  (a full checkpoint is taken instead), so a row never outlives its children's generation.
* An execution's rows are deleted when it ends (its final snapshot holds everything).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aionix import jsonutil
from aionix.cluster import LeaseLost
from aionix.errors import StoreError
from aionix.loops import running_loop

if TYPE_CHECKING:
    from aionix.stepflow.engine import Engine, Frame, Run

log = logging.getLogger("aionix.stepflow")


def _in_subtree(frame_id: str | None, ids: set[str]) -> bool:
    """Whether `frame_id` is one of `ids` or a frame below one (ids are dotted paths)."""
    if frame_id is None:
        return False
    if frame_id in ids:
        return True
    cut = frame_id.rfind(".")
    while cut > 0:
        if frame_id[:cut] in ids:
            return True
        cut = frame_id.rfind(".", 0, cut)
    return False


class ItemLog:
    """Records finished children of one engine's runs; lays them over a loaded snapshot."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._due: dict[int, list[Frame]] = {}  # by id(run): a resumed run is a new object
        self.stats = {"items": 0, "transactions": 0}

    # ------------------------------------------------------------------ while running
    def new_scope(self, run: Run, scope: str) -> None:
        """A map/parallel frame made its children (ids `<scope>.<n>`): rows of earlier ones go."""
        run.item_scopes.add(scope)

    def finished(self, run: Run, child: Frame) -> None:
        """`child` (a map item or parallel branch) succeeded or failed: record it soon (this
        turn's finished children share one transaction)."""
        if not run.inserted or run.status != "RUNNING":
            return
        due = self._due.get(id(run))
        if due is None:
            due = self._due[id(run)] = []
            running_loop().call_soon(self._submit, run)
        due.append(child)

    def _submit(self, run: Run) -> None:
        children = self._due.pop(id(run), [])
        live = [c for c in children if self._current(c)]
        if not live or run.status != "RUNNING" or run.done.is_set():
            return
        if run.item_scopes:
            # a map/parallel started its children anew and that is not durable yet: a full
            # checkpoint (which holds these children's results in its snapshot) instead
            task = running_loop().create_task(self.engine.checkpoint(run))
            task.add_done_callback(_quiet)
            return
        ids = {c.id for c in live}
        taken: list[Any] = []
        rest: list[Any] = []
        for ev in run.pending:
            # with the children's events go the execution's own (`ExecutionResumed`), which
            # come before every other event of their turn
            (taken if ev[5] is None or _in_subtree(ev[5], ids) else rest).append(ev)
        if taken and rest:
            # the recorded events first, the others after them: `seq` stays contiguous in
            # whatever order the two transactions commit... and they commit in queue order
            base = run.pending[0][1]
            taken = [(ev[0], base + i, *ev[2:]) for i, ev in enumerate(taken)]
            rest = [(ev[0], base + len(taken) + i, *ev[2:]) for i, ev in enumerate(rest)]
        run.pending = rest
        host = self.engine.host
        event_rows = host._event_rows(run, taken)
        item_rows = []
        for c in live:
            value = c.output if c.status == "succeeded" else c.error
            item_rows.append((run.id, c.id, c.status, host._redact_text(run, jsonutil.dumps(value).decode())))
        next_seq = (taken[-1][1] + 1) if taken else None

        epoch = run.epoch

        def tx_fn(tx: Any) -> None:
            fence(tx, run.id, epoch)
            if event_rows:
                follows(tx, run.id, event_rows[0][1])
                tx.executemany("stepflow.insert_event", event_rows)
                tx.execute("stepflow_items.advance_seq", {"id": run.id, "next_seq": next_seq})
            tx.executemany("stepflow_items.record_item", item_rows)

        self.stats["items"] += len(item_rows)
        self.stats["transactions"] += 1
        # queued now, before any later checkpoint of this run (one already scheduled swaps the
        # pending events only when it runs), so commits keep `seq` order
        try:
            future = host.store.submit(tx_fn)
        except StoreError:  # closed: shutting down; the run resumes from its last checkpoint
            return
        run.stored_items = True
        future.add_done_callback(lambda f: self._written(run, f))

    @staticmethod
    def _current(child: Frame) -> bool:
        """Still one of its parent's children (not of a generation that was since dropped)."""
        parent = child.parent
        if child.status not in ("succeeded", "failed") or parent is None or not parent.children:
            return False
        try:
            pos = int(child.id.rsplit(".", 1)[1])
        except (IndexError, ValueError):
            return False
        return pos < len(parent.children) and parent.children[pos] is child

    def _written(self, run: Run, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            # the events written with the rows are lost with them: the execution resumes
            # from its last checkpoint (as after any failed checkpoint)
            log.warning("execution %s: finished items could not be recorded: %s", run.id, exc)
            if run.task is not None and not run.task.done():
                run.task.cancel()
                asyncio.ensure_future(self.engine.host.broken(run, exc)).add_done_callback(_quiet)

    # ------------------------------------------------------------------ checkpoints and resumes
    @staticmethod
    def persist(tx: Any, run: Run, scopes: set[str], terminal: bool) -> None:
        """Inside a checkpoint's transaction: drop the rows its snapshot supersedes."""
        if not run.stored_items:
            return  # none written (nor queued) for this run: nothing to drop
        if terminal:
            tx.execute("stepflow_items.clear_execution", (run.id,))
            return
        for scope in scopes:
            tx.execute("stepflow_items.clear_scope", {"id": run.id, "scope": scope})

    async def restore(self, run: Run) -> int:
        """Lay the recorded results over a freshly loaded run's frame tree."""
        rows = await self.engine.host.store.fetch_all("stepflow_items.item_results", {"id": run.id})
        if not rows:
            return 0
        by_id = {r["frame"]: r for r in rows}
        restored = 0
        for frame in run.root.walk():
            row = by_id.get(frame.id)
            if row is None or frame.status != "running" or frame.parent is None:
                continue
            value = jsonutil.loads(row["result"]) if row["result"] is not None else None
            frame.status = row["status"]
            if frame.status == "succeeded":
                frame.output, frame.error = value, None
            else:
                frame.error = value
            frame.children, frame.token, frame.due = None, None, None
            restored += 1
        return restored


def follows(tx: Any, execution_id: str, first_seq: int) -> None:
    """Inside a transaction that writes events from `first_seq` on: the event before it must be
    in the store already. An item's transaction and a checkpoint of the same run can be in
    flight together; when the earlier one failed (the run then resumes from its last
    checkpoint), the later one must not commit events past a hole in the history."""
    row = tx.fetch_one("stepflow_items.last_seq", (execution_id,))
    last = row["n"] if row is not None else 0
    if last != first_seq - 1:
        raise StoreError(
            f"execution {execution_id}: events from {first_seq} do not follow the stored history (last {last})"
        )


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def fence(tx: Any, execution_id: str, epoch: int) -> None:
    """Inside a transaction that writes for an execution: this node must still hold the lease
    it claimed the execution under (aionix/cluster.py); else `LeaseLost` undoes the transaction."""
    if not tx.execute("stepflow.fence", {"id": execution_id, "epoch": epoch}):
        raise LeaseLost(f"execution {execution_id}: another node holds its lease now (epoch {epoch} is stale)")
