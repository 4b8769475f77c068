import type { SessionEvent } from "@outrig/protocol";
import { describe, expect, it } from "vitest";
import { EMPTY_SANDBOX_STATE, foldSandboxState } from "./sandbox-state.js";

const at = (second: number) => new Date(Date.UTC(2026, 11, 4, 12, 0, second)).toISOString();
let seq = 0;
const event = (second: number, fields: Record<string, unknown>) =>
  ({ seq: ++seq, at: at(second), ...fields }) as unknown as SessionEvent;

describe("foldSandboxState", () => {
  it("is 'none' without sandbox events", () => {
    expect(foldSandboxState([])).toEqual(EMPTY_SANDBOX_STATE);
    expect(foldSandboxState([event(0, { type: "session.start", model: "m" })]).state).toBe("none");
  });

  it("follows start, standby, resume, hibernate, snapshot, cold and end", () => {
    const start = event(1, {
      type: "sandbox.start",
      sandboxId: "a",
      provider: "bubblewrap",
      durationMs: 50,
      limits: { memoryBytes: 1 },
    });
    const snapshot = event(2, {
      type: "sandbox.snapshot",
      sandboxId: "a",
      key: "sessions/s/1/manifest.json",
      toolCallId: "call_1",
      sizeBytes: 10,
      entryCount: 3,
      durationMs: 4,
    });
    const standby = event(3, { type: "sandbox.standby", sandboxId: "a" });
    const resume = event(4, { type: "sandbox.resume", sandboxId: "a", durationMs: 2.5 });
    const hibernate = event(5, { type: "sandbox.hibernate", sandboxId: "a" });
    const cold = event(6, { type: "sandbox.cold", sandboxId: "a", killedProcesses: 2 });
    const end = event(7, { type: "sandbox.end", reason: "idle" });
    expect(foldSandboxState([start])).toMatchObject({
      state: "running",
      since: at(1),
      limits: { memoryBytes: 1 },
    });
    expect(foldSandboxState([start, snapshot, standby])).toMatchObject({
      state: "standby",
      since: at(3),
      latestSnapshot: { key: "sessions/s/1/manifest.json", toolCallId: "call_1", at: at(2) },
    });
    expect(foldSandboxState([start, standby, resume])).toMatchObject({ state: "running", lastResumeMs: 2.5 });
    expect(foldSandboxState([start, standby, resume, hibernate]).state).toBe("hibernated");
    const coldView = foldSandboxState([start, snapshot, cold]);
    expect(coldView).toMatchObject({ state: "cold", since: at(6), lostProcesses: 2 });
    expect(coldView.latestSnapshot?.key).toBe("sessions/s/1/manifest.json");
    expect(foldSandboxState([start, snapshot, cold, end])).toMatchObject({
      state: "destroyed",
      latestSnapshot: null,
      since: at(7),
    });
  });

  it("counts replacements, ignores stale sandbox ids and is running again after a restart", () => {
    const events = [
      event(1, { type: "sandbox.start", sandboxId: "a", provider: "p", durationMs: 1 }),
      event(2, { type: "sandbox.replace", sandboxId: "a", reason: "bwrap exited with SIGKILL" }),
      event(3, { type: "sandbox.start", sandboxId: "b", provider: "p", durationMs: 1 }),
      event(4, { type: "sandbox.standby", sandboxId: "a" }),
      event(5, {
        type: "tool.end",
        turn: 1,
        toolCallId: "c",
        name: "Bash",
        isError: false,
        output: "",
        durationMs: 1,
      }),
    ];
    const snapshot = event(6, {
      type: "sandbox.snapshot",
      sandboxId: "b",
      key: "k",
      sizeBytes: 1,
      entryCount: 1,
      durationMs: 1,
    });
    // A snapshot without its own call id (a Write) reflects the call that ended last.
    expect(foldSandboxState([...events, snapshot]).latestSnapshot?.toolCallId).toBe("c");
    expect(foldSandboxState(events)).toMatchObject({
      state: "running",
      sandboxId: "b",
      replacements: 1,
      lastActivityAt: at(5),
    });
  });
});
