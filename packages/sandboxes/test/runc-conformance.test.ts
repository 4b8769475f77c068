import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeSandboxProviderConformance } from "@outrig/testing";
import { afterAll, describe, it } from "vitest";
import {
  checkRuncHibernate,
  createLocalDirectoryBlobStore,
  createRuncSandboxProvider,
} from "../src/index.js";

// Needs root, runc and a CRIU >= 4 that passes `criu check` (scripts/install-criu.sh; CI exports
// OUTRIG_CRIU). Anything missing skips the whole suite with the reason printed once.
const support = await checkRuncHibernate();

if (support.isSupported) {
  const stateDirectory = mkdtempSync(join(tmpdir(), "outrig-runc-"));
  const provider = createRuncSandboxProvider({
    criuPath: support.criuPath,
    stateDir: join(stateDirectory, "state"),
    blobStore: createLocalDirectoryBlobStore(join(stateDirectory, "blobs")),
  });
  afterAll(async () => {
    await provider.close();
    rmSync(stateDirectory, { recursive: true, force: true });
  });
  describeSandboxProviderConformance("runc", () => provider, {
    hibernate: true,
    restoreWorkspace: (ref, directory) => provider.restoreWorkspace(ref, directory),
  });
} else {
  console.log(`runc conformance skipped: ${support.reason}`);
  describe.skip(`runc: SandboxProvider conformance (${support.reason})`, () => {
    it("needs root, runc and CRIU >= 4", () => undefined);
  });
}
