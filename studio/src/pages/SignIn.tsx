import { useState, type FormEvent } from "react";
import { useSession } from "../api/session";

export function SignIn() {
  const { signIn, error, checking } = useSession();
  const [key, setKey] = useState("");
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (key.trim()) await signIn(key);
  };
  return (
    <main className="signin">
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
    </main>
  );
}
