/** Who is signed in: the key's role and tenant from GET /api/v1/whoami. */
import { create } from "zustand";
import { ApiError, request, storedKey, storeKey } from "./client";

export type Role = "viewer" | "operator" | "admin";

export interface WhoAmI {
  key_id: string;
  tenant: string;
  role: Role;
  cross_tenant: boolean;
  version: string;
}

interface SessionState {
  who: WhoAmI | null;
  checking: boolean;
  error: string | null;
  signIn: (key: string) => Promise<boolean>;
  restore: () => Promise<void>;
  signOut: () => void;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function atLeast(who: WhoAmI | null, role: Role): boolean {
  return !!who && RANK[who.role] >= RANK[role];
}

export const useSession = create<SessionState>((set) => ({
  who: null,
  checking: true,
  error: null,
  async signIn(key) {
    set({ checking: true, error: null });
    try {
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
  async restore() {
    const key = storedKey();
    if (!key) return set({ checking: false });
    try {
      const who = await request<WhoAmI>("GET", "/api/v1/whoami", undefined, undefined, key);
      set({ who, checking: false });
    } catch {
      storeKey(null);
      set({ who: null, checking: false });
    }
  },
  signOut() {
    storeKey(null);
    set({ who: null, error: null });
  },
}));
