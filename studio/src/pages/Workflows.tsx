import { Link } from "../App";
import { atLeast, useSession } from "../api/session";
import type { WorkflowSummary } from "../api/workflows";
import { DataTable, ErrorBox, usePagedList, when } from "../components/common";
import { navigate } from "../router";

export function WorkflowsPage() {
  const who = useSession((s) => s.who);
  const list = usePagedList<WorkflowSummary>("/api/v1/workflows");
  return (
    <section className="page">
      <header className="page-head">
        <h1>Workflows</h1>
        {atLeast(who, "operator") && (
          <Link to="/workflows/new" className="button primary">
            New workflow
          </Link>
        )}
      </header>
      <ErrorBox error={list.error} />
      {!list.error && (
        <DataTable
          caption="Workflows"
          rows={list.items}
          rowKey={(r) => r.name}
          loading={list.loading}
          more={list.more}
          onSelect={(r) => navigate(`/workflows/${encodeURIComponent(r.name)}`)}
          columns={[
            { label: "Name", value: (r) => <Link to={`/workflows/${encodeURIComponent(r.name)}`}>{r.name}</Link>, text: (r) => r.name },
            { label: "Version", value: (r) => String(r.version ?? r.latest_version ?? "—") },
            { label: "Description", value: (r) => r.description ?? "" },
            { label: "Updated", value: (r) => when(r.updated_at) },
            { label: "Executions", value: (r) => <Link to={`/executions?workflow=${encodeURIComponent(r.name)}`}>executions of {r.name}</Link>, text: () => "" },
          ]}
          empty={
            <>
              <p>No workflows yet.</p>
              <p>
                Create one with <b>New workflow</b>: drag states from the palette, connect them, save, then run it. Or import a JSON file from <code>examples/workflows/</code>.
              </p>
            </>
          }
        />
      )}
    </section>
  );
}
