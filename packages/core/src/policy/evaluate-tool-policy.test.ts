import { describe, expect, it } from "vitest";
import { evaluateToolPolicy, wildcardMatch } from "./evaluate-tool-policy.js";

describe("evaluateToolPolicy", () => {
  const policy = {
    approvalTimeoutMs: 60_000,
    rules: [
      { tool: "Bash", match: "git push*", action: "ask" as const },
      { tool: "Bash", match: "rm -rf /*", action: "deny" as const },
      { tool: "Write", match: "/workspace/.github/*", action: "deny" as const },
      { tool: "*", action: "allow" as const },
    ],
  };

  it.each([
    ["Bash", { command: "git push origin main" }, "ask", "Bash(git push*): ask"],
    ["Bash", { command: "  git push  " }, "ask", "Bash(git push*): ask"],
    ["Bash", { command: "git status" }, "allow", "*: allow"],
    ["Bash", { command: "rm -rf /workspace/x" }, "deny", "Bash(rm -rf /*): deny"],
    [
      "Write",
      { file_path: "/workspace/.github/workflows/ci.yml", content: "" },
      "deny",
      "Write(/workspace/.github/*): deny",
    ],
    ["Write", { file_path: "/workspace/a.txt", content: "" }, "allow", "*: allow"],
    ["Bash", "not an object", "allow", "*: allow"],
  ])("%s %j → %s", (name, input, action, rule) => {
    expect(evaluateToolPolicy(policy, name, input)).toEqual({ action, rule });
  });

  it("matches the agent toolset's bash by its command and web_fetch by its URL", () => {
    const toolset = {
      approvalTimeoutMs: 60_000,
      rules: [
        { tool: "bash", match: "git push*", action: "ask" as const },
        { tool: "web_fetch", match: "https://internal.example.com/*", action: "deny" as const },
        { tool: "read", match: "/workspace/secret*", action: "deny" as const },
      ],
    };
    expect(evaluateToolPolicy(toolset, "bash", { command: "git push" })).toEqual({
      action: "ask",
      rule: "bash(git push*): ask",
    });
    expect(evaluateToolPolicy(toolset, "bash", { command: "ls" }).action).toBe("allow");
    expect(evaluateToolPolicy(toolset, "web_fetch", { url: "https://internal.example.com/x" }).action).toBe(
      "deny",
    );
    expect(evaluateToolPolicy(toolset, "read", { file_path: "/workspace/secrets.txt" }).action).toBe("deny");
    // Relative and roundabout paths are matched as the path they lead to.
    expect(evaluateToolPolicy(toolset, "read", { file_path: "secrets.txt" }).action).toBe("deny");
    expect(evaluateToolPolicy(toolset, "read", { file_path: "/tmp/../workspace/secrets.txt" }).action).toBe(
      "deny",
    );
  });

  it("allows everything when there are no rules", () => {
    expect(evaluateToolPolicy({ rules: [], approvalTimeoutMs: 1000 }, "Bash", { command: "x" })).toEqual({
      action: "allow",
      rule: "default",
    });
  });

  it("treats regex characters literally", () => {
    expect(wildcardMatch("a.b(c)", "a.b(c)")).toBe(true);
    expect(wildcardMatch("a.b", "axb")).toBe(false);
    expect(wildcardMatch("?x", "yx")).toBe(true);
  });
});

describe("rules by either name of a tool", () => {
  it("applies a rule naming Claude Code's tool to the agent toolset's tool of the same name, and back", () => {
    const policy = {
      rules: [
        { tool: "Bash", match: "rm -rf *", action: "deny" as const },
        { tool: "write", match: "/etc/*", action: "ask" as const },
      ],
      approvalTimeoutMs: 1000,
    };
    expect(evaluateToolPolicy(policy, "bash", { command: "rm -rf /" }).action).toBe("deny");
    expect(evaluateToolPolicy(policy, "Bash", { command: "rm -rf /" }).action).toBe("deny");
    expect(evaluateToolPolicy(policy, "Write", { file_path: "/etc/passwd", content: "" }).action).toBe("ask");
    expect(evaluateToolPolicy(policy, "read", { file_path: "/etc/passwd" }).action).toBe("allow");
    expect(evaluateToolPolicy(policy, "bash", { command: "ls" }).action).toBe("allow");
  });
});
