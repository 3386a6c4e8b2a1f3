/** The transaction log behind undo/redo: every edit is one transaction that replaces the whole
 * snapshot (document + node positions), so undo restores exactly the document that was there. */
import type { Workflow } from "./types";

export interface Position {
  x: number;
  y: number;
}

export interface Snapshot {
  doc: Workflow;
  positions: Record<string, Position>;
}

export interface Transaction {
  label: string;
  before: Snapshot;
  after: Snapshot;
}

export class TransactionLog {
  past: Transaction[] = [];
  future: Transaction[] = [];
  constructor(
    public present: Snapshot,
    private readonly limit = 500,
  ) {}

  /** Apply `edit` to the present snapshot as one transaction; an edit that throws changes nothing. */
  commit(label: string, edit: (s: Snapshot) => Snapshot): Snapshot {
    const before = this.present;
    const after = edit(before);
    if (after === before) return before;
    this.past.push({ label, before, after });
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
    this.present = after;
    return after;
  }

  get canUndo(): boolean {
    return this.past.length > 0;
  }

  get canRedo(): boolean {
    return this.future.length > 0;
  }

  undo(): Transaction | undefined {
    const t = this.past.pop();
    if (!t) return undefined;
    this.future.push(t);
    this.present = t.before;
    return t;
  }

  redo(): Transaction | undefined {
    const t = this.future.pop();
    if (!t) return undefined;
    this.past.push(t);
    this.present = t.after;
    return t;
  }

  reset(snapshot: Snapshot): void {
    this.past = [];
    this.future = [];
    this.present = snapshot;
  }
}
