import { describe, expect, it } from "vitest";
import { validateCreateOptions } from "./validate-create-options.js";

const base = { sessionId: "sesn_1", orgId: "org_1", workspaceDir: "/tmp/workspace" };

describe("validateCreateOptions", () => {
  it("accepts read-only and writable mounts at absolute paths outside /workspace", () => {
    expect(() =>
      validateCreateOptions({
        ...base,
        readOnlyMounts: [{ hostPath: "/host/uploads", sandboxPath: "/mnt/session/uploads" }],
        writableMounts: [{ hostPath: "/host/outputs", sandboxPath: "/mnt/session/outputs" }],
      }),
    ).not.toThrow();
  });

  it.each([
    ["a relative host path", { hostPath: "outputs", sandboxPath: "/mnt/session/outputs" }],
    ["the root", { hostPath: "/host/outputs", sandboxPath: "/" }],
    ["the workspace", { hostPath: "/host/outputs", sandboxPath: "/workspace" }],
    ["a .. segment", { hostPath: "/host/outputs", sandboxPath: "/mnt/../etc" }],
    ["a relative sandbox path", { hostPath: "/host/outputs", sandboxPath: "mnt/outputs" }],
  ])("refuses a writable mount with %s", (_, mount) => {
    expect(() => validateCreateOptions({ ...base, writableMounts: [mount] })).toThrow(
      expect.objectContaining({ code: "sandbox_invalid_options" }),
    );
  });
});
