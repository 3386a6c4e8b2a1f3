/** What happened to one state in an execution, from its history: each visit (a state can run
 * again in a loop, a map item or a redrive) with its input, every attempt's result or error,
 * and its output or failure. */

export interface HistoryEvent {
  seq: number;
  ts: number;
  type: string;
  state?: string | null;
  frame?: string | null;
  detail?: unknown;
}

export interface Attempt {
  attempt: number;
  result?: unknown;
  error?: { error?: string; cause?: string };
  retryInSeconds?: number;
}

export interface Visit {
  frame: string | null;
  enteredAt: number;
  input?: unknown;
  attempts: Attempt[];
  output?: unknown;
  error?: { error?: string; cause?: string; next?: string };
  status: "running" | "succeeded" | "failed";
}

type Detail = Record<string, unknown>;

export function stateRuns(events: HistoryEvent[], state: string): Visit[] {
  const visits: Visit[] = [];
  const open = new Map<string, Visit>();
  for (const e of events) {
    if (e.state !== state) continue;
    const key = e.frame ?? "";
    const d = (e.detail && typeof e.detail === "object" ? e.detail : {}) as Detail;
    let visit = open.get(key);
    if (e.type === "StateEntered" || !visit) {
      visit = { frame: e.frame ?? null, enteredAt: e.ts, attempts: [], status: "running" };
      visits.push(visit);
      open.set(key, visit);
      if (e.type === "StateEntered") {
        visit.input = d.input;
        continue;
      }
    }
    const attemptNo = typeof d.attempt === "number" ? d.attempt : visit.attempts.length ? visit.attempts[visit.attempts.length - 1].attempt : 1;
    const attempt = () => {
      let a = visit!.attempts.find((x) => x.attempt === attemptNo);
      if (!a) visit!.attempts.push((a = { attempt: attemptNo }));
      return a;
    };
    switch (e.type) {
      case "TaskScheduled":
        attempt();
        break;
      case "TaskSucceeded":
        attempt().result = d.result;
        break;
      case "TaskFailed":
        attempt().error = { error: d.error as string, cause: d.cause as string };
        break;
      case "RetryScheduled":
        if (visit.attempts.length) visit.attempts[visit.attempts.length - 1].retryInSeconds = d.delay_seconds as number;
        break;
      case "StateExited":
        visit.output = d.output;
        visit.status = "succeeded";
        break;
      case "StateFailed":
      case "Caught":
        visit.error = { error: d.error as string, cause: d.cause as string, next: d.next as string | undefined };
        visit.status = "failed";
        break;
    }
  }
  return visits;
}
