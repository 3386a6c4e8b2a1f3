/** Who is signed in: the key's (or user's) role and tenant from GET /api/v1/whoami.
 *
 * Three ways in: an API key; a local user's password (POST /api/v1/auth/login); OpenID Connect
 * (the server runs the code + PKCE flow and sends the browser back with `?aionix_signin=<code>`,
 * a one-time code exchanged here for the tokens). A user session holds a short-lived access
 * token (used like a key) and a refresh token, both in this tab's session storage; the access
 * token is renewed before it expires, and on a 401 at restore. */
import { create } from "zustand";
import { ApiError, request, storedKey, storeKey } from "./client";

export type Role = "viewer" | "operator" | "admin";

export interface WhoAmI {
  key_id: string;
  tenant: string;
  role: Role;
  cross_tenant: boolean;
  version: string;
  /** the signed-in user's name (user sessions only; kept from the sign-in) */
  user?: string;
  /** newer servers: the signed-in user's id (null for an API key), groups and how the call
   * authenticated ("key" or "token"); older ones leave them out */
  user_id?: string | null;
  groups?: string[];
  source?: string;
}

/** What the header says about who is signed in. */
export interface Identity {
  kind: "user" | "key";
  /** the user's name, or the API key's prefix (never the key itself) */
  name: string;
  tenant: string;
  role: Role;
  /** further lines for the account menu */
  details: [string, string][];
}

/** A user session (OIDC or a local user) shows the user's name; an API key its prefix (the
 * part the Keys page shows) and id. Works with both shapes of whoami (with or without
 * user_id/groups/source). */
export function identity(who: WhoAmI, key: string | null): Identity {
  const isUser = !!who.user || !!who.user_id;
  const details: [string, string][] = [];
  if (isUser) {
    if (who.user_id) details.push(["user id", who.user_id]);
    if (who.groups?.length) details.push(["groups", who.groups.join(", ")]);
    details.push(["signed in with", "a short-lived token (renewed while this tab is open)"]);
    return { kind: "user", name: who.user || who.user_id || who.key_id, tenant: who.tenant, role: who.role, details };
  }
  const prefix = key && key.startsWith("aio_") ? `${key.slice(0, 10)}…` : null;
  details.push(["key id", who.key_id]);
  if (who.source === "token") details.push(["signed in with", "a short-lived token for this key"]);
  if (who.cross_tenant) details.push(["scope", "cross-tenant admin"]);
  return { kind: "key", name: prefix ?? who.key_id, tenant: who.tenant, role: who.role, details };
}

export interface AuthInfo {
  local_users: boolean;
  oidc: { display_name: string; authorize_url: string } | null;
  access_token_ttl_seconds: number;
}

interface Tokens {
  access_token: string;
  expires_in: number;
  refresh_token?: string | null;
  user?: { id: string; tenant: string; name: string; role: Role; groups: string[] } | null;
}

interface SessionState {
  who: WhoAmI | null;
  checking: boolean;
  error: string | null;
  signIn: (key: string) => Promise<boolean>;
  signInWithPassword: (username: string, password: string, tenant?: string) => Promise<boolean>;
  restore: () => Promise<void>;
  signOut: () => void;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
const REFRESH = "aionix.refresh";
const USER = "aionix.user";
let timer: ReturnType<typeof setTimeout> | undefined;

export function atLeast(who: WhoAmI | null, role: Role): boolean {
  return !!who && RANK[who.role] >= RANK[role];
}

export function authInfo(): Promise<AuthInfo> {
  return request<AuthInfo>("GET", "/api/v1/auth/config", undefined, undefined, null);
}

function keep(tokens: Tokens): void {
  storeKey(tokens.access_token);
  if (tokens.refresh_token) sessionStorage.setItem(REFRESH, tokens.refresh_token);
  if (tokens.user) sessionStorage.setItem(USER, tokens.user.name);
  clearTimeout(timer);
  if (tokens.refresh_token) {
    // renew at 80% of the lifetime (at least 5 s ahead)
    const ms = Math.max(1000, Math.min(tokens.expires_in * 800, (tokens.expires_in - 5) * 1000));
    timer = setTimeout(() => void renew(), ms);
  }
}

function forget(): void {
  clearTimeout(timer);
  storeKey(null);
  sessionStorage.removeItem(REFRESH);
  sessionStorage.removeItem(USER);
}

/** A new access token from the refresh token; false when the session is over. */
async function renew(): Promise<boolean> {
  const refresh = sessionStorage.getItem(REFRESH);
  if (!refresh) return false;
  try {
    keep(await request<Tokens>("POST", "/api/v1/auth/refresh", { refresh_token: refresh }, undefined, null));
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      forget();
      useSession.setState({ who: null, error: "Your session ended; sign in again." });
    }
    return false;
  }
}

async function whoami(key: string | null): Promise<WhoAmI> {
  const who = await request<WhoAmI>("GET", "/api/v1/whoami", undefined, undefined, key);
  const user = sessionStorage.getItem(USER);
  return user ? { ...who, user } : who;
}

/** The OIDC callback's outcome in the URL: a one-time code to exchange, or why it failed. */
async function fromRedirect(): Promise<string | null> {
  const params = new URLSearchParams(location.search);
  const code = params.get("aionix_signin");
  const failed = params.get("aionix_signin_error");
  if (!code && !failed) return null;
  params.delete("aionix_signin");
  params.delete("aionix_signin_error");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  if (failed) return failed;
  try {
    keep(await request<Tokens>("POST", "/api/v1/auth/oidc/exchange", { handoff: code }, undefined, null));
    return "";
  } catch (e) {
    return (e as Error).message;
  }
}

export const useSession = create<SessionState>((set) => ({
  who: null,
  checking: true,
  error: null,
  async signIn(key) {
    set({ checking: true, error: null });
    try {
      forget();
      const who = await request<WhoAmI>("GET", "/api/v1/whoami", undefined, undefined, key.trim());
      storeKey(key.trim());
      set({ who, checking: false });
      return true;
    } catch (e) {
      const message = e instanceof ApiError && e.status === 401 ? "That key was not accepted." : (e as Error).message;
      set({ who: null, checking: false, error: message });
      return false;
    }
  },
  async signInWithPassword(username, password, tenant) {
    // not `checking`: the form stays mounted (and keeps the user name) while this runs
    set({ error: null });
    try {
      const body = { username: username.trim(), password, ...(tenant ? { tenant } : {}) };
      keep(await request<Tokens>("POST", "/api/v1/auth/login", body, undefined, null));
      set({ who: await whoami(storedKey()), checking: false });
      return true;
    } catch (e) {
      forget();
      const message =
        e instanceof ApiError && e.status === 401
          ? "That user name and password were not accepted."
          : e instanceof ApiError && e.status === 429
            ? "Too many failed sign-ins; wait a minute and try again."
            : (e as Error).message;
      set({ who: null, checking: false, error: message });
      return false;
    }
  },
  async restore() {
    const redirected = await fromRedirect();
    if (redirected) {
      forget();
      return set({ who: null, checking: false, error: `Single sign-on failed: ${redirected}` });
    }
    const key = storedKey();
    if (!key) return set({ checking: false });
    try {
      const who = await whoami(key);
      set({ who, checking: false });
      if (sessionStorage.getItem(REFRESH) && redirected === null) void renew(); // a reload: re-arm the timer
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && (await renew())) {
        try {
          return set({ who: await whoami(storedKey()), checking: false });
        } catch {
          /* fall through: signed out */
        }
      }
      forget();
      set({ who: null, checking: false });
    }
  },
  signOut() {
    const refresh = sessionStorage.getItem(REFRESH);
    if (refresh) void request("POST", "/api/v1/auth/logout", { refresh_token: refresh }, undefined, null).catch(() => undefined);
    forget();
    set({ who: null, error: null });
  },
}));
