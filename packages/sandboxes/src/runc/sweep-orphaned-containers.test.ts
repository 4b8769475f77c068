import { describe, expect, it } from "vitest";
import { buildRuncConfig, type RuncBundleLayout } from "./runc-bundle.js";
import {
  describeRuncSweep,
  RUNC_OWNER_ANNOTATION,
  type RuncListEntry,
  selectOrphanedContainers,
} from "./sweep-orphaned-containers.js";

const owned = (id: string, status: string, owner?: string): RuncListEntry => ({
  id,
  status,
  bundle: `/state/${id}/bundle`,
  annotations: owner === undefined ? {} : { [RUNC_OWNER_ANNOTATION]: owner },
});

describe("selectOrphanedContainers", () => {
  it("deletes the paused, created and stopped containers of gone servers and nothing else", () => {
    const containers = [
      owned("gone-paused", "paused", "server-1-10"),
      owned("gone-stopped", "stopped", "server-1-10"),
      owned("gone-created", "created", "server-1-10"),
      owned("gone-running", "running", "server-1-10"),
      owned("live-paused", "paused", "server-2-20"),
      owned("live-running", "running", "server-2-20"),
      owned("legacy-paused", "paused"),
    ];
    const asked: string[] = [];
    const { toDelete, runningOrphans } = selectOrphanedContainers(containers, (owner) => {
      asked.push(owner);
      return owner === "server-2-20";
    });
    expect(toDelete.map((container) => container.id)).toEqual([
      "gone-paused",
      "gone-stopped",
      "gone-created",
    ]);
    expect(runningOrphans).toBe(1);
    expect(new Set(asked)).toEqual(new Set(["server-1-10", "server-2-20"]));
    expect(describeRuncSweep({ deletedContainers: 3, runningOrphans, failures: [] })).toBe(
      "outrig sandboxes: deleted 3 orphaned runc containers; left 1 running orphaned containers",
    );
    expect(describeRuncSweep({ deletedContainers: 0, runningOrphans: 0, failures: [] })).toBeUndefined();
  });
});

describe("the runc bundle", () => {
  it("names its owning server in an annotation", () => {
    const layout = {
      uid: 0,
      gid: 0,
      userName: "sandbox",
      hostname: "sandbox",
      nodePath: "/usr/bin/node",
      agentPath: "/agent.mjs",
      workspaceDir: "/w",
      nodeFlags: [],
      hostRoot: [],
      agentDir: "/a",
      hostEtcEntries: [],
      owner: "server-3-30",
    } as unknown as RuncBundleLayout;
    expect(buildRuncConfig(layout, "/rootfs").annotations).toEqual({
      [RUNC_OWNER_ANNOTATION]: "server-3-30",
    });
  });
});
