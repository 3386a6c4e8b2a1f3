/**
 * How the extension starts the language server: the `aionix.lspCommand` setting, else `aio lsp`
 * when `aio` is on the PATH, else the single binary's `aionix aio lsp`. The server URL and profile
 * settings are passed as the CLI's global options.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Settings } from "./config";

export interface ServerCommand {
  command: string;
  args: string[];
}

export function which(name: string, envPath: string = process.env.PATH ?? "", exists = isExecutable): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (exists(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export function serverCommand(settings: Settings, find: (name: string) => string | undefined = (n) => which(n)): ServerCommand {
  const global: string[] = [];
  if (settings.serverUrl) global.push("--url", settings.serverUrl);
  if (settings.profile) global.push("--profile", settings.profile);
  if (settings.lspCommand && settings.lspCommand.length > 0) {
    const [command, ...args] = settings.lspCommand;
    return { command, args: [...args, ...global] };
  }
  const aio = find("aio");
  if (aio) return { command: aio, args: [...global, "lsp"] };
  const binary = find("aionix");
  if (binary) return { command: binary, args: ["aio", ...global, "lsp"] };
  throw new Error("neither `aio` nor `aionix` is on the PATH: install Aionix (pip install 'aionix[lsp]') or set aionix.lspCommand");
}

/** The files the language server handles. */
export const DOCUMENT_SELECTOR = [
  { scheme: "file", pattern: "**/*.flow.{yaml,yml,json}" },
  { scheme: "file", pattern: "**/*.asl.{json,yaml}" },
];
