/**
 * `outrig audit ls [--kind K] [--limit N] [--after SEQ] [--json]` and `outrig audit verify`: the org's
 * audit log through the API (admin keys only). verify exits 1 when the chain was tampered with.
 */
import { parseArgs } from "node:util";
import { AUDIT_KIND_NAMES, AuditList, AuditVerifyReport } from "@outrig/protocol";

export interface AuditCommandOptions {
  readonly server: string;
  readonly apiKey: string;
  readonly out: (text: string) => void;
}

export const AUDIT_USAGE =
  "usage: outrig audit ls [--kind KIND] [--limit N] [--after SEQ] [--session ID] [--json] | outrig audit verify [--json]";

/** Runs one audit subcommand and returns the exit code. Throws with the server's error code and message. */
export async function auditCommand(argv: readonly string[], options: AuditCommandOptions): Promise<number> {
  const [subcommand, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      kind: { type: "string" },
      limit: { type: "string" },
      after: { type: "string" },
      session: { type: "string" },
      json: { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new Error(AUDIT_USAGE);
  switch (subcommand) {
    case "ls": {
      if (values.kind !== undefined && !(AUDIT_KIND_NAMES as readonly string[]).includes(values.kind)) {
        throw new Error(`unknown --kind ${values.kind}; one of ${AUDIT_KIND_NAMES.join(", ")}`);
      }
      const query = new URLSearchParams();
      if (values.kind !== undefined) query.set("kind", values.kind);
      if (values.session !== undefined) query.set("sessionId", values.session);
      // Without --limit, follow the pages to the end of the log.
      let after: string | undefined = values.after;
      for (;;) {
        if (after !== undefined) query.set("after", after);
        query.set("limit", values.limit ?? "1000");
        const list = AuditList.parse(await getJson(options, `/v1/audit?${query}`));
        for (const entry of list.entries) {
          if (values.json) {
            options.out(`${JSON.stringify(entry)}\n`);
            continue;
          }
          const who = [entry.sessionId, entry.userId].filter(Boolean).join(" ") || "-";
          options.out(`${entry.seq}\t${entry.at}\t${entry.kind}\t${who}\t${JSON.stringify(entry.data)}\n`);
        }
        if (values.limit !== undefined || list.nextAfter === null) break;
        after = String(list.nextAfter);
      }
      return 0;
    }
    case "verify": {
      const report = AuditVerifyReport.parse(await getJson(options, "/v1/audit/verify"));
      if (values.json) options.out(`${JSON.stringify(report)}\n`);
      else if (report.isValid) {
        options.out(`OK: ${report.count} entries, the chain is intact; head ${report.headHash}\n`);
      } else {
        options.out(`TAMPERED at seq ${report.seq} (${report.problem}): ${report.message}\n`);
      }
      if (!values.json && report.lastCheckpoint) {
        options.out(
          `anchored: checkpoint of entry ${report.lastCheckpoint.seq} at ${report.lastCheckpoint.at}, kept outside the database\n`,
        );
      }
      return report.isValid ? 0 : 1;
    }
    default:
      throw new Error(AUDIT_USAGE);
  }
}

async function getJson(options: AuditCommandOptions, route: string): Promise<unknown> {
  const response = await fetch(`${options.server}${route}`, {
    headers: { authorization: `Bearer ${options.apiKey}` },
  });
  const body = (await response.json().catch(() => null)) as {
    error?: { code?: string; message?: string };
  } | null;
  if (!response.ok) {
    throw new Error(`${body?.error?.code ?? response.status}: ${body?.error?.message ?? "request failed"}`);
  }
  return body;
}
