import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeSandboxProviderConformance } from "@outrig/testing";
import { createBubblewrapSandboxProvider, createLocalDirectoryBlobStore } from "../src/index.js";

const provider = createBubblewrapSandboxProvider({
  blobStore: createLocalDirectoryBlobStore(mkdtempSync(join(tmpdir(), "outrig-conformance-blobs-"))),
});

describeSandboxProviderConformance("bubblewrap", () => provider, {
  restoreWorkspace: (ref, directory) => provider.restoreWorkspace(ref, directory),
});
