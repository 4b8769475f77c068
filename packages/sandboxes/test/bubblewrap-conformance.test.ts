import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeSandboxProviderConformance } from "@outrig/testing";
import { afterAll } from "vitest";
import { createBubblewrapSandboxProvider, createLocalDirectoryBlobStore } from "../src/index.js";

const blobDirectory = mkdtempSync(join(tmpdir(), "outrig-conformance-blobs-"));
const provider = createBubblewrapSandboxProvider({ blobStore: createLocalDirectoryBlobStore(blobDirectory) });

afterAll(() => rmSync(blobDirectory, { recursive: true, force: true }));

describeSandboxProviderConformance("bubblewrap", () => provider, {
  restoreWorkspace: (ref, directory) => provider.restoreWorkspace(ref, directory),
});
