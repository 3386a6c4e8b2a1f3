/** The shell: sign-in, the navigation and the page for the current path. */
import { useEffect, useRef, useState, type ReactNode } from "react";
import { storedKey } from "./api/client";
import { atLeast, identity, useSession, type WhoAmI } from "./api/session";
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

/** Who is signed in (a user's name, or an API key's prefix), the tenant and role; the menu
 * holds the details and Sign out. Closes on Escape, on a click elsewhere and on leaving it by
 * keyboard. */
function AccountMenu({ who, signOut }: { who: WhoAmI; signOut: () => void }) {
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  const me = identity(who, storedKey());
  useEffect(() => {
    if (!open) return;
    const away = (e: MouseEvent) => box.current && !box.current.contains(e.target as Node) && setOpen(false);
    document.addEventListener("mousedown", away);
    return () => document.removeEventListener("mousedown", away);
  }, [open]);
  return (
    <div
      className="account"
      ref={box}
      onKeyDown={(e) => e.key === "Escape" && setOpen(false)}
      onBlur={(e) => !e.currentTarget.contains(e.relatedTarget as Node | null) && setOpen(false)}
    >
      <button
        type="button"
        className="ghost who"
        aria-haspopup="true"
        aria-expanded={open}
        aria-controls="account-menu"
        data-testid="whoami"
        onClick={() => setOpen(!open)}
      >
        <span className="who-name" data-testid="whoami-name">
          {me.kind === "user" ? "" : "key "}
          <b>{me.name}</b>
        </span>{" "}
        · tenant <b>{me.tenant}</b> · role <b>{me.role}</b>
        {me.role === "viewer" && <span className="tag">read-only</span>} <span aria-hidden="true">▾</span>
      </button>
      {open && (
        <div className="account-menu" id="account-menu" aria-label="Account">
          <dl className="props">
            <div>
              <dt>{me.kind === "user" ? "user" : "API key"}</dt>
              <dd>{me.name}</dd>
            </div>
            {me.details.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      )}
    </div>
  );
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
        <AccountMenu who={who} signOut={signOut} />
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
