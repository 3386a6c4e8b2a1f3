/** The timeline view of an execution: a Gantt chart of its state runs on one time axis, with
 * attempts, retry backoffs and waits; map iterations and parallel branches on their own rows,
 * a picker to show one iteration, and each bar a link to that run's input and output. */
import { useMemo, useState } from "react";
import { barsFor, buildTimeline, offsetLabel, type Bar } from "./timeline";
import type { HistoryEvent } from "./stateRuns";

const TICKS = 5;

export function TimelineView({ events, live, onPick }: { events: HistoryEvent[]; live: boolean; onPick: (bar: Bar) => void }) {
  const [frame, setFrame] = useState("");
  const t = useMemo(() => buildTimeline(events), [events]);
  const bars = barsFor(t, frame);
  const span = t.end - t.start;
  const pct = (ts: number) => `${(((ts - t.start) / span) * 100).toFixed(3)}%`;
  const width = (a: number, b: number | null) => `${Math.max(0.4, (((b ?? t.end) - a) / span) * 100).toFixed(3)}%`;
  return (
    <div className="timeline" data-testid="timeline">
      <div className="timeline-bar">
        <label>
          Show{" "}
          <select value={frame} onChange={(e) => setFrame(e.target.value)} aria-label="Map iteration or branch">
            <option value="">every iteration and branch ({t.iterations.length})</option>
            {t.iterations.map((i) => (
              <option key={i.frame} value={i.frame}>
                {i.label}
              </option>
            ))}
          </select>
        </label>
        <span className="muted">
          {bars.length} state run{bars.length === 1 ? "" : "s"} over {offsetLabel(span).slice(1)}
          {live ? " (live)" : ""}
        </span>
        <span className="legend" aria-hidden>
          <i className="seg-attempt" /> attempt <i className="seg-retry" /> retry backoff <i className="seg-wait" /> wait
        </span>
      </div>
      <div className="timeline-axis" aria-hidden>
        {Array.from({ length: TICKS + 1 }, (_, i) => (
          <span key={i} style={{ left: `${(i / TICKS) * 100}%` }}>
            {offsetLabel((span * i) / TICKS)}
          </span>
        ))}
      </div>
      <ol className="timeline-rows" aria-label="State runs on a time axis">
        {bars.map((b) => (
          <li key={b.key} className="timeline-row">
            <span className="timeline-name" style={{ paddingLeft: 6 + b.depth * 12 }} title={b.where ? `${b.where} › ${b.state}` : b.state}>
              {b.state}
              {b.where && <small className="muted"> {b.where}</small>}
            </span>
            <span className="timeline-track">
              <button
                type="button"
                className={`timeline-run s-${b.status}`}
                style={{ left: pct(b.start), width: width(b.start, b.end) }}
                data-testid={`run-${b.state}`}
                data-frame={b.frame}
                title={`${b.state}${b.where ? ` (${b.where})` : ""}: ${b.status}, ${offsetLabel(b.start - t.start)} for ${b.end === null ? "…" : `${((b.end - b.start) * 1000).toFixed(0)} ms`}${b.error ? `\n${b.error.error}: ${b.error.cause ?? ""}` : ""}`}
                aria-label={`${b.state}${b.where ? ` in ${b.where}` : ""}, ${b.status}, ${b.end === null ? "running" : `${((b.end - b.start) * 1000).toFixed(0)} ms`}: show its input and output`}
                onClick={() => onPick(b)}
              >
                {b.segments.map((s, i) => (
                  <i
                    key={i}
                    className={`seg-${s.kind}${s.failed ? " failed" : ""}`}
                    title={s.label}
                    style={{
                      left: `${(((s.start - b.start) / Math.max((b.end ?? t.end) - b.start, 0.001)) * 100).toFixed(3)}%`,
                      width: `${Math.max(1, (((s.end ?? b.end ?? t.end) - s.start) / Math.max((b.end ?? t.end) - b.start, 0.001)) * 100).toFixed(3)}%`,
                    }}
                  />
                ))}
              </button>
            </span>
          </li>
        ))}
      </ol>
      {bars.length === 0 && <p className="muted">No state has run yet.</p>}
    </div>
  );
}
