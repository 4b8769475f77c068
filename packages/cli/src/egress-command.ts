/** `outrig egress show` prints the org's egress policy; `outrig egress set <file|->` replaces it (admins). */
import fs from "node:fs/promises";
import { type ApiSettings, apiCall, readAll } from "./api-call.js";

export const EGRESS_USAGE = `usage: outrig egress show
       outrig egress set <policy.json | ->
policy: {"allowedHosts": ["github.com", "git.corp:8443", "*.npmjs.org"],  (no port: 443 and 80 only)
         "credentials": [{"host": "github.com", "secretName": "GITHUB_TOKEN", "scheme": "basic"}]}`;

export interface EgressCommandOptions extends ApiSettings {
  readonly stdin: NodeJS.ReadableStream;
  readonly out: (text: string) => void;
}

export async function egressCommand(argv: readonly string[], options: EgressCommandOptions): Promise<void> {
  const [subcommand, source, ...extra] = argv;
  if (subcommand === "show" && source === undefined) {
    const policy = await (await apiCall(options, "GET", "/v1/egress-policy")).json();
    options.out(`${JSON.stringify(policy, null, 2)}\n`);
    return;
  }
  if (subcommand === "set" && source !== undefined && extra.length === 0) {
    const text =
      source === "-" ? (await readAll(options.stdin)).toString("utf8") : await fs.readFile(source, "utf8");
    let policy: unknown;
    try {
      policy = JSON.parse(text);
    } catch (error) {
      throw new Error(
        `${source === "-" ? "standard input" : source} is not JSON: ${(error as Error).message}`,
      );
    }
    const stored = await (await apiCall(options, "PUT", "/v1/egress-policy", policy)).json();
    options.out(`${JSON.stringify(stored, null, 2)}\n`);
    return;
  }
  throw new Error(EGRESS_USAGE);
}
