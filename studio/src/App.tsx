/** The shell: sign-in, the navigation and the page for the current path. */
import { useEffect, type ReactNode } from "react";
import { atLeast, useSession } from "./api/session";
import { navigate, usePath } from "./router";
import { SignIn } from "./pages/SignIn";
import { WorkflowsPage } from "./pages/Workflows";
import { EditorPage } from "./editor/EditorPage";
import { ExecutionsPage } from "./pages/Executions";
import { ExecutionPage } from "./pages/Execution";
import { FunctionsPage } from "./pages/Functions";
import { TriggersPage } from "./pages/Triggers";
import { ConnectionsPage } from "./pages/Connections";
import { SecretsPage } from "./pages/Secrets";
import { ParamsPage } from "./pages/Params";
import { KeysPage } from "./pages/Keys";
import { AuditPage } from "./pages/Audit";
import { TasksPage } from "./pages/Tasks";
import { ModulesPage } from "./pages/Modules";

const NAV: { path: string; label: string; admin?: boolean }[] = [
  { path: "/workflows", label: "Workflows" },
  { path: "/executions", label: "Executions" },
  { path: "/functions", label: "Functions" },
  { path: "/triggers", label: "Triggers" },
  { path: "/connections", label: "Connections" },
  { path: "/secrets", label: "Secrets" },
  { path: "/params", label: "Parameters" },
  { path: "/tasks", label: "Tasks" },
  { path: "/modules", label: "Modules" },
  { path: "/keys", label: "API keys", admin: true },
  { path: "/audit", label: "Audit", admin: true },
];

export function Link({ to, children, className }: { to: string; children: ReactNode; className?: string }) {
  return (
    <a
      href={to}
      className={className}
      onClick={(e) => {
        e.stopPropagation();
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

function AdminOnly({ children }: { children: ReactNode }) {
  const who = useSession((s) => s.who);
  if (atLeast(who, "admin")) return <>{children}</>;
  return (
    <section className="page">
      <h1>Admins only</h1>
      <p>This page needs an admin key; you are signed in as {who?.role}.</p>
    </section>
  );
}

function route(path: string): ReactNode {
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  switch (parts[0]) {
    case undefined:
    case "workflows":
      if (parts[1] === "new") return <EditorPage name={null} />;
      if (parts[1]) return <EditorPage name={parts[1]} />;
      return <WorkflowsPage />;
    case "executions":
      return parts[1] ? <ExecutionPage id={parts[1]} /> : <ExecutionsPage />;
    case "functions":
      return <FunctionsPage name={parts[1] ?? null} />;
    case "triggers":
      return <TriggersPage />;
    case "connections":
      return <ConnectionsPage />;
    case "secrets":
      return <SecretsPage />;
    case "params":
      return <ParamsPage />;
    case "tasks":
      return <TasksPage />;
    case "modules":
      return <ModulesPage />;
    case "keys":
      return (
        <AdminOnly>
          <KeysPage />
        </AdminOnly>
      );
    case "audit":
      return (
        <AdminOnly>
          <AuditPage />
        </AdminOnly>
      );
    default:
      return (
        <section className="page">
          <h1>Not found</h1>
          <p>
            There is no page at {path}. <Link to="/workflows">Go to workflows</Link>.
          </p>
        </section>
      );
  }
}

export function App() {
  const { who, checking, restore, signOut } = useSession();
  const path = usePath();
  useEffect(() => {
    void restore();
  }, [restore]);
  if (checking && !who) return <div className="splash">Loading…</div>;
  if (!who) return <SignIn />;
  const current = "/" + (path.split("/")[1] || "workflows");
  const label = NAV.find((n) => n.path === current)?.label;
  document.title = label ? `${label} · Aionix Studio` : "Aionix Studio";
  return (
    <div className="shell">
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/workflows" className="brand">
          Aionix Studio
        </Link>
        <span className="who" data-testid="whoami">
          tenant <b>{who.tenant}</b> · role <b>{who.role}</b>
          {who.role === "viewer" && <span className="tag">read-only</span>}
        </span>
        <button className="ghost" onClick={signOut}>
          Sign out
        </button>
      </header>
      <nav className="sidebar" aria-label="Main">
        <ul>
          {NAV.filter((n) => !n.admin || atLeast(who, "admin")).map((n) => (
            <li key={n.path}>
              <Link to={n.path} className={current === n.path ? "active" : undefined}>
                {n.label}
              </Link>
            </li>
          ))}
        </ul>
        <p className="version">v{who.version}</p>
      </nav>
      <main className="content" id="main" tabIndex={-1}>
        {route(path)}
      </main>
    </div>
  );
}
