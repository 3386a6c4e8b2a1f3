import { useEffect, useState, type FormEvent } from "react";
import { authInfo, useSession, type AuthInfo } from "../api/session";

export function SignIn() {
  const { signIn, signInWithPassword, error, checking } = useSession();
  const [key, setKey] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [info, setInfo] = useState<AuthInfo | null>(null);
  useEffect(() => {
    authInfo().then(setInfo, () => setInfo(null));
  }, []);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (key.trim()) await signIn(key);
  };
  const [busy, setBusy] = useState(false);
  const submitPassword = async (e: FormEvent) => {
    e.preventDefault();
    if (!username.trim() || !password) return;
    setBusy(true);
    if (!(await signInWithPassword(username, password))) setBusy(false);
  };
  const back = location.pathname === "/" ? "/" : location.pathname + location.search;
  return (
    <main className="signin">
      {info?.oidc && (
        <section aria-labelledby="sso-title" className="signin-sso">
          <h2 id="sso-title">Single sign-on</h2>
          <a
            className="button primary"
            data-testid="sso-signin"
            href={`${info.oidc.authorize_url}?${new URLSearchParams({ return_to: back })}`}
          >
            Sign in with {info.oidc.display_name}
          </a>
        </section>
      )}
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Aionix Studio</h1>
        <p>Sign in with an API key. The first start of the server printed an admin key and wrote it to the CLI's credentials file.</p>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" autoFocus value={key} onChange={(e) => setKey(e.target.value)} />
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={!key.trim() || (checking && !!key)}>
          Sign in
        </button>
        <p className="hint">The key stays in this tab's session storage and is sent only to this server.</p>
      </form>
      {info?.local_users && (
        <form onSubmit={submitPassword} aria-labelledby="local-title" className="signin-local">
          <h2 id="local-title">User name and password</h2>
          <label htmlFor="signin-user">User name</label>
          <input id="signin-user" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />
          <label htmlFor="signin-password">Password</label>
          <input
            id="signin-password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <button type="submit" disabled={!username.trim() || !password || busy}>
            Sign in as user
          </button>
        </form>
      )}
    </main>
  );
}
