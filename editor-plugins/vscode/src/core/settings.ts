// From the user's settings to what starts the server and what it is told at initialize.
import * as fs from "node:fs";
import * as path from "node:path";

export interface Settings {
  serverPath: string;
  serverArgs: string[];
  modelDir: string;
  device: string;
  corpora: string[];
  windowBars: number;
  genreField: string;
  dbPath: string;
}

export const DEFAULTS: Settings = {
  serverPath: "tunelens",
  serverArgs: ["lsp"],
  modelDir: "",
  device: "auto",
  corpora: [],
  windowBars: 4,
  genreField: "R",
  dbPath: "",
};

/** Reads each key through `get` (VS Code's configuration, or a plain object in tests). */
export function readSettings(get: (key: string) => unknown): Settings {
  const str = (key: keyof Settings): string => {
    const v = get(key);
    return typeof v === "string" ? v.trim() : (DEFAULTS[key] as string);
  };
  const strings = (key: "serverArgs" | "corpora"): string[] => {
    const v = get(key);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string" && x.trim() !== "") : DEFAULTS[key];
  };
  const bars = get("windowBars");
  return {
    serverPath: str("serverPath") || DEFAULTS.serverPath,
    serverArgs: strings("serverArgs"),
    modelDir: str("modelDir"),
    device: ["auto", "cpu", "cuda"].includes(str("device")) ? str("device") : DEFAULTS.device,
    corpora: strings("corpora"),
    windowBars: typeof bars === "number" && Number.isInteger(bars) && bars >= 1 ? bars : DEFAULTS.windowBars,
    genreField: str("genreField") || DEFAULTS.genreField,
    dbPath: str("dbPath"),
  };
}

/** Expands `~` and `${workspaceFolder}`, and takes a relative path from the workspace. */
export function expandPath(p: string, workspace: string | undefined, home: string): string {
  let out = p.replace(/\$\{workspaceFolder\}/g, workspace ?? "");
  if (out === "~" || out.startsWith("~/")) out = path.join(home, out.slice(1));
  if (!path.isAbsolute(out) && workspace) out = path.join(workspace, out);
  return out;
}

export class ServerNotFound extends Error {}

/**
 * The executable to spawn. A bare name is searched on PATH here, rather than left to spawn,
 * so that a missing binary is one clear message instead of an ENOENT from the client library.
 */
export function resolveServer(
  setting: string,
  workspace: string | undefined,
  env: { [name: string]: string | undefined },
  isExecutable: (file: string) => boolean = executable,
): string {
  const home = env.HOME ?? "";
  if (setting.includes("/") || setting.startsWith("~")) {
    const file = expandPath(setting, workspace, home);
    if (isExecutable(file)) return file;
    throw new ServerNotFound(`tunelens.serverPath: ${file} is not an executable file`);
  }
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, setting);
    if (isExecutable(file)) return file;
  }
  throw new ServerNotFound(
    `'${setting}' was not found on PATH. Install tunelens (cargo install --path . in its repository) or set tunelens.serverPath.`,
  );
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** initializationOptions and the answer to workspace/configuration: only what is set. */
export function serverOptions(s: Settings, workspace: string | undefined, home: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    device: s.device,
    windowBars: s.windowBars,
    genreField: s.genreField,
  };
  if (s.modelDir) out.modelDir = expandPath(s.modelDir, workspace, home);
  if (s.dbPath) out.dbPath = expandPath(s.dbPath, workspace, home);
  if (s.corpora.length) out.corpora = s.corpora.map((c) => expandPath(c, workspace, home));
  return out;
}
