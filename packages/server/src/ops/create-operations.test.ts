import type { SessionEvent } from "@outrig/protocol";
import { describe, expect, it } from "vitest";
import { createOperations } from "./create-operations.js";
import { createLogger } from "./logger.js";
import { loadOperationsConfig } from "./operations-config.js";

const operations = () =>
  createOperations(loadOperationsConfig({}), {
    serviceInstanceId: "test",
    logger: createLogger({ level: "silent" }),
  });

describe("operations metrics", () => {
  it("counts egress decisions from the audit entries it passes on, unchanged", async () => {
    const ops = operations();
    const appended: unknown[] = [];
    const audit = ops.observeEgressAudit({
      append: async (_orgId: string, entry: { kind: string; data?: unknown }) => {
        appended.push(entry);
      },
    });
    await audit.append("org_1", { kind: "egress", data: { decision: "refused" } });
    await audit.append("org_1", { kind: "egress", data: { decision: "allowed" } });
    await audit.append("org_1", { kind: "secret_use", data: {} });
    expect(appended).toHaveLength(3);
    const { body } = await ops.metrics.render();
    expect(body).toContain('outrig_egress_decisions_total{decision="refused"} 1');
    expect(body).toContain('outrig_egress_decisions_total{decision="allowed"} 1');
    expect(ops.tracing).toBeUndefined();
  });

  it("follows each session's sandbox through its lifecycle events and forgets it once destroyed", async () => {
    const ops = operations();
    let seq = 0;
    const record = (sessionId: string, event: Record<string, unknown>) =>
      ops.metrics.recordSessionEvent(sessionId, {
        seq: ++seq,
        at: new Date(1_000 * seq).toISOString(),
        ...event,
      } as SessionEvent);
    record("sesn_a", { type: "sandbox.start", sandboxId: "a", provider: "p", durationMs: 1 });
    record("sesn_b", { type: "sandbox.start", sandboxId: "b", provider: "p", durationMs: 1 });
    record("sesn_b", { type: "sandbox.standby", sandboxId: "b" });
    let { body } = await ops.metrics.render();
    expect(body).toContain('outrig_sandboxes{state="running"} 1');
    expect(body).toContain('outrig_sandboxes{state="standby"} 1');
    record("sesn_a", { type: "sandbox.end", reason: "idle" });
    ({ body } = await ops.metrics.render());
    expect(body).toContain('outrig_sandboxes{state="running"} 0');
    expect(body).toContain('outrig_sandbox_transitions_total{state="standby"} 1');
  });
});
