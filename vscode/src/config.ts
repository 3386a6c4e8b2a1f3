/**
 * Where the server is: the extension's settings, else the environment, else the `aio` profile in
 * ~/.config/aionix/credentials (the same order and file as the CLI). No `vscode` import: tested
 * outside the editor.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const DEFAULT_URL = "http://127.0.0.1:53000";

export interface Settings {
  serverUrl?: string;
  profile?: string;
  lspCommand?: string[];
}

export interface Connection {
  url: string;
  apiKey?: string;
  profile: string;
}

/** The subset of TOML that `aio login` writes: `current = "…"`, `["name"]` tables, `key = "value"`. */
export function parseCredentials(text: string): { current?: string; profiles: Record<string, Record<string, string>> } {
  const profiles: Record<string, Record<string, string>> = {};
  let current: string | undefined;
  let table: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const header = /^\[\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_-]+))\s*\]$/.exec(line);
    if (header) {
      const name = header[1] !== undefined ? unquote(header[1]) : header[2];
      table = profiles[name] = profiles[name] ?? {};
      continue;
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:#.*)?$/.exec(line);
    if (!kv) continue;
    const value = unquote(kv[2]);
    if (table) table[kv[1]] = value;
    else if (kv[1] === "current") current = value;
  }
  return { current, profiles };
}

function unquote(s: string): string {
  return s.replace(/\\(["\\])/g, "$1");
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const file = env.AIONIX_SECURITY_CREDENTIALS_FILE || path.join(env.HOME || os.homedir(), ".config", "aionix", "credentials");
  return file.startsWith("~") ? path.join(env.HOME || os.homedir(), file.slice(1)) : file;
}

/** settings > AIONIX_URL / AIONIX_API_KEY / AIONIX_PROFILE > the credentials file's current profile. */
export function resolveConnection(settings: Settings, env: NodeJS.ProcessEnv = process.env, readFile = readOrEmpty): Connection {
  const creds = parseCredentials(readFile(credentialsPath(env)));
  const profile = settings.profile || env.AIONIX_PROFILE || creds.current || "default";
  const data = creds.profiles[profile] ?? {};
  const url = (settings.serverUrl || env.AIONIX_URL || data.url || DEFAULT_URL).replace(/\/+$/, "");
  return { url, apiKey: env.AIONIX_API_KEY || data.api_key || undefined, profile };
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, "utf-8");
  } catch {
    return "";
  }
}
