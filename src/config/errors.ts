import type { z } from "zod";

export interface ConfigIssue {
  /** Field path in the document that was checked, e.g. `virtualServices[0].listeners[1].port`. */
  path: string;
  /** What is wrong and how to fix it. */
  message: string;
}

/** A config (or inputs) document was refused; `issues` lists every problem, not just the first. */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[], what = "config") {
    super(`invalid ${what}:\n` + issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}`).join("\n"));
    this.name = "ConfigError";
    this.issues = issues;
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>, prefix = ""): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** zod issues → our issues, with messages that say what to do for the common cases. */
export function fromZodIssues(issues: ReadonlyArray<z.core.$ZodIssue>, prefix = ""): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const i of issues) {
    if (i.code === "unrecognized_keys") {
      for (const k of i.keys) {
        out.push({
          path: formatPath([...i.path, k], prefix),
          message: `unknown key '${k}': remove it or check its spelling against 'ctera-lb schema'`,
        });
      }
      continue;
    }
    if (i.code === "invalid_union" && "errors" in i && Array.isArray(i.errors) && i.errors.length > 0) {
      // A union (e.g. a real server given as an address or an object): report the branch that got furthest.
      const best = [...i.errors].sort((a, b) => deepest(b) - deepest(a))[0];
      out.push(...fromZodIssues(best, formatPath(i.path, prefix)));
      continue;
    }
    let message = i.message;
    if (i.code === "invalid_type" && /received undefined/.test(message)) message = `required: ${message}`;
    out.push({ path: formatPath(i.path, prefix), message });
  }
  return out;
}

function deepest(issues: ReadonlyArray<z.core.$ZodIssue>): number {
  return Math.max(0, ...issues.map((i) => i.path.length + (i.code === "invalid_type" ? 0 : 1)));
}
