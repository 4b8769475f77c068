/**
 * Anchors each org's audit chain outside the database: checkpoints of (org, seq, head hash), each
 * signed with HMAC-SHA256 under a key derived from the master key (never stored in the database),
 * appended to `<directory>/<orgId>.jsonl`. Someone holding only the database credentials can rewrite
 * or cut the chain, but not below a checkpoint without `verify` saying so.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { InvariantError } from "@outrig/core";
import { canonicalJson } from "./canonical-json.js";
import type { AuditChainReport, AuditCheckpointMark, PostgresAuditLog } from "./postgres-audit-log.js";

const FORMAT_VERSION = 1;
const ORG_ID = /^[A-Za-z0-9_-]{1,128}$/;
const HASH = /^[0-9a-f]{64}$/;

/** One checkpoint line as written. */
interface CheckpointLine {
  readonly v: number;
  readonly orgId: string;
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  readonly mac: string;
}

export interface AuditCheckpointsOptions {
  readonly log: Pick<PostgresAuditLog, "verifyAuditChain" | "heads">;
  /** Where the checkpoint files live (the server uses `OUTRIG_HOME/audit-checkpoints`). */
  readonly directory: string;
  /** The master key; checkpoints are signed with a key derived from it. */
  readonly masterKey: Buffer;
  readonly clock?: () => Date;
  /** Where a chain that fails its periodic check is reported. */
  readonly report?: (message: string) => void;
}

/** What `verify` returns: the chain's report plus the newest checkpoint it was checked against. */
export type AnchoredAuditReport = AuditChainReport & {
  readonly lastCheckpoint: { readonly seq: number; readonly at: string } | null;
};

export class AuditCheckpoints {
  readonly #options: AuditCheckpointsOptions;
  readonly #key: Buffer;
  readonly #clock: () => Date;
  /** The newest checkpoint written or read per org, so the periodic pass verifies only what is new. */
  readonly #latest = new Map<string, AuditCheckpointMark>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: AuditCheckpointsOptions) {
    this.#options = options;
    this.#key = createHmac("sha256", options.masterKey).update("outrig audit checkpoints v1").digest();
    this.#clock = options.clock ?? (() => new Date());
  }

  /**
   * Verifies the org's chain against every checkpoint of it; a checkpoint line whose signature fails
   * is reported as `checkpoint_invalid`. When the chain is intact and has grown, the verified head is
   * checkpointed too. Throws only on I/O errors.
   */
  async verify(orgId: string): Promise<AnchoredAuditReport> {
    const read = await this.read(orgId);
    if (read.invalidLine !== undefined) {
      return {
        isValid: false,
        count: 0,
        seq: 0,
        problem: "checkpoint_invalid",
        message: `line ${read.invalidLine} of the checkpoint file of this org is not a checkpoint signed with this server's master key: the file was edited`,
        lastCheckpoint: summary(newestOf(read.checkpoints)),
      };
    }
    const report = await this.#options.log.verifyAuditChain(orgId, { checkpoints: read.checkpoints });
    let newest = newestOf(read.checkpoints);
    if (report.isValid && report.count > (newest?.seq ?? 0)) {
      newest = await this.#append(orgId, report.count, report.headHash);
    }
    return { ...report, lastCheckpoint: summary(newest) };
  }

  /**
   * Checkpoints every org whose head moved since its last checkpoint, after verifying the entries in
   * between (a head that does not chain onto the last checkpoint is reported, not anchored).
   */
  async checkpointAll(): Promise<void> {
    for (const head of await this.#options.log.heads()) {
      if (!ORG_ID.test(head.orgId)) continue;
      const last = this.#latest.get(head.orgId) ?? newestOf((await this.read(head.orgId)).checkpoints);
      if (last) this.#latest.set(head.orgId, last);
      if (last && head.seq <= last.seq) {
        if (head.seq < last.seq || head.hash !== last.hash) {
          this.#options.report?.(
            `audit log of org ${head.orgId}: its head (entry ${head.seq}) is behind or beside the checkpoint of ${last.at} (entry ${last.seq}); run outrig audit verify`,
          );
        }
        continue;
      }
      const report = await this.#options.log.verifyAuditChain(head.orgId, {
        ...(last ? { startAfter: last } : {}),
      });
      if (!report.isValid) {
        this.#options.report?.(
          `audit log of org ${head.orgId} fails verification after its last checkpoint, so it was not checkpointed: ${report.message}`,
        );
        continue;
      }
      await this.#append(head.orgId, report.count, report.headHash);
    }
  }

  /** Runs `checkpointAll` every `intervalMs` (timer unref'd) until `close`. */
  start(intervalMs: number): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = this.checkpointAll()
        .catch((error: Error) => this.#options.report?.(`audit checkpoints: ${error.message}`))
        .finally(() => {
          this.#running = undefined;
        });
    }, intervalMs);
    this.#timer.unref?.();
  }

  /** Stops the timer and waits for a pass in progress. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /**
   * The org's checkpoints in file order, each signature checked. `invalidLine` (1-based) is the
   * first line that is not a valid signed checkpoint of this org; a last line cut short by a crash
   * (no newline) is ignored.
   */
  async read(orgId: string): Promise<{ checkpoints: AuditCheckpointMark[]; invalidLine?: number }> {
    let text: string;
    try {
      text = await readFile(this.#file(orgId), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { checkpoints: [] };
      throw error;
    }
    const lines = text.split("\n");
    lines.pop(); // "" after the last newline, or a torn last line
    const checkpoints: AuditCheckpointMark[] = [];
    for (const [index, line] of lines.entries()) {
      const mark = this.#parse(orgId, line);
      if (!mark) return { checkpoints, invalidLine: index + 1 };
      checkpoints.push(mark);
    }
    return { checkpoints };
  }

  async #append(orgId: string, seq: number, hash: string): Promise<AuditCheckpointMark> {
    const at = this.#clock().toISOString();
    const body = { v: FORMAT_VERSION, orgId, seq, hash, at };
    const line: CheckpointLine = { ...body, mac: this.#mac(body) };
    await mkdir(this.#options.directory, { recursive: true, mode: 0o700 });
    // One write with O_APPEND: concurrent appends never interleave within a line.
    await appendFile(this.#file(orgId), `${JSON.stringify(line)}\n`, { mode: 0o600, flag: "a" });
    const mark = { seq, hash, at };
    const latest = this.#latest.get(orgId);
    if (!latest || latest.seq < seq) this.#latest.set(orgId, mark);
    return mark;
  }

  #parse(orgId: string, line: string): AuditCheckpointMark | null {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return null;
    }
    const candidate = value as Partial<CheckpointLine> | null;
    if (
      !candidate ||
      candidate.v !== FORMAT_VERSION ||
      candidate.orgId !== orgId ||
      !Number.isSafeInteger(candidate.seq) ||
      (candidate.seq ?? 0) < 1 ||
      typeof candidate.hash !== "string" ||
      !HASH.test(candidate.hash) ||
      typeof candidate.at !== "string" ||
      typeof candidate.mac !== "string"
    ) {
      return null;
    }
    const { v, seq, hash, at, mac } = candidate as CheckpointLine;
    const expected = Buffer.from(this.#mac({ v, orgId, seq, hash, at }), "hex");
    const given = Buffer.from(mac, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    return { seq, hash, at };
  }

  #mac(body: Omit<CheckpointLine, "mac">): string {
    return createHmac("sha256", this.#key).update(canonicalJson(body)).digest("hex");
  }

  #file(orgId: string): string {
    if (!ORG_ID.test(orgId)) throw new InvariantError(`not an org id: ${orgId.slice(0, 40)}`);
    return path.join(this.#options.directory, `${orgId}.jsonl`);
  }
}

function newestOf(checkpoints: readonly AuditCheckpointMark[]): AuditCheckpointMark | undefined {
  let newest: AuditCheckpointMark | undefined;
  for (const mark of checkpoints) if (!newest || mark.seq > newest.seq) newest = mark;
  return newest;
}

function summary(mark: AuditCheckpointMark | undefined): { seq: number; at: string } | null {
  return mark ? { seq: mark.seq, at: mark.at } : null;
}
