import type { ExecRequest, ExecResult } from "@outrig/core";
import type { NewSessionEvent } from "@outrig/protocol";
import { describe, expect, it } from "vitest";
import { toRepositoryEgress } from "./egress/repository-egress.js";
import {
  classifyCloneFailure,
  cloneRepositories,
  cloneScript,
  type RepositoryResource,
  repositoryResourcesOf,
} from "./session-repositories.js";

const result = (exitCode: number, stdout: string, stderr = ""): ExecResult => ({
  exitCode,
  signal: null,
  stdout,
  stderr,
  isTimedOut: false,
  isTruncated: false,
  durationMs: 1,
});

describe("classifyCloneFailure", () => {
  it.each([
    [
      "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
      128,
      "repository_authentication_error",
    ],
    ["fatal: Authentication failed for 'https://github.com/a/b/'", 128, "repository_authentication_error"],
    [
      "fatal: unable to access 'https://github.com/a/b/': The requested URL returned error: 403",
      128,
      "repository_forbidden_error",
    ],
    ["fatal: repository 'https://github.com/a/b/' not found", 128, "repository_not_found_error"],
    ["fatal: Remote branch nope not found in upstream origin", 128, "repository_checkout_error"],
    ["commit 0abc is not in the repository", 4, "repository_checkout_error"],
    [
      "fatal: unable to access 'https://github.com/a/b/': The requested URL returned error: 403\noutrig egress refused GET https://github.com/a/b/info/refs: host github.com is not on this org's egress allowlist",
      128,
      "repository_clone_error",
    ],
    ["fatal: early EOF", 128, "repository_clone_error"],
  ])("%s → %s", (stderr, exitCode, type) => {
    expect(classifyCloneFailure(exitCode, stderr)).toBe(type);
  });
});

describe("cloneScript", () => {
  it("quotes what the client chose, so a branch or path cannot run commands", () => {
    const script = cloneScript({
      id: "sesrsc_a",
      url: "https://github.com/a/b",
      checkout: { type: "branch", name: "x'; touch /tmp/pwned; '" },
      mountPath: "/workspace/it's",
      version: "v",
    });
    expect(script).toContain(`--branch='x'\\''; touch /tmp/pwned; '\\'''`);
    expect(script).toContain(`dir='/workspace/it'\\''s'`);
    expect(script).toContain("-- 'https://github.com/a/b'");
  });
});

describe("cloneRepositories", () => {
  const resources = repositoryResourcesOf([
    {
      id: "sesrsc_a",
      type: "github_repository",
      url: "https://github.com/a/b",
      mount_path: "/workspace/b",
      updated_at: "1",
    },
    { id: "sesrsc_f", type: "file", file_id: "file_x", mount_path: "/x" },
    {
      id: "sesrsc_c",
      type: "github_repository",
      url: "https://github.com/a/c",
      mount_path: "/workspace/c",
      checkout: { type: "commit", sha: "abc1234" },
      updated_at: "1",
    },
  ]);

  it("tries each version once and records the commit or the API's error", async () => {
    const commands: ExecRequest[] = [];
    const events: NewSessionEvent[] = [];
    const attempted = new Set<string>();
    const options = {
      resources,
      attempted,
      exec: async (request: ExecRequest) => {
        commands.push(request);
        return commands.length === 1
          ? result(0, `${"a".repeat(40)}\n`)
          : result(4, "", "commit abc1234 is not in the repository");
      },
      emit: async (event: NewSessionEvent) => {
        events.push(event);
      },
    };
    expect(resources.map((resource: RepositoryResource) => resource.id)).toEqual(["sesrsc_a", "sesrsc_c"]);
    await cloneRepositories(options);
    await cloneRepositories(options);
    expect(commands).toHaveLength(2);
    expect(commands[0]?.env).toEqual({ GIT_TERMINAL_PROMPT: "0" });
    expect(events).toEqual([
      {
        type: "repository.clone",
        resourceId: "sesrsc_a",
        url: "https://github.com/a/b",
        mountPath: "/workspace/b",
        commit: "a".repeat(40),
      },
      expect.objectContaining({
        resourceId: "sesrsc_c",
        error: expect.objectContaining({ type: "repository_checkout_error" }),
      }),
    ]);
  });
});

describe("toRepositoryEgress", () => {
  it("gives one basic rule per repository, scoped to its path, the token set last winning", () => {
    const egress = toRepositoryEgress(
      [
        { id: "sesrsc_a", url: "https://github.com/acme/widgets" },
        { id: "sesrsc_b", url: "https://github.com/acme/widgets.git" },
        { id: "sesrsc_c", url: "https://github.com/acme/gadgets/" },
        { id: "sesrsc_d", url: "https://github.com/acme/no-token" },
      ],
      new Map([
        ["sesrsc_a", "old"],
        ["sesrsc_c", "gadgets"],
        ["sesrsc_b", "new"],
      ]),
    );
    expect(egress.rules).toEqual([
      {
        host: "github.com",
        secretName: "session_resource:sesrsc_c",
        scheme: "basic",
        username: "x-access-token",
        pathPrefix: "/acme/gadgets",
      },
      {
        host: "github.com",
        secretName: "session_resource:sesrsc_b",
        scheme: "basic",
        username: "x-access-token",
        pathPrefix: "/acme/widgets",
      },
    ]);
    expect(egress.values.get("session_resource:sesrsc_b")).toBe("new");
  });
});
