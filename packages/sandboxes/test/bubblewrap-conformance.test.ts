import { describeSandboxProviderConformance } from "@outrig/testing";
import { createBubblewrapSandboxProvider } from "../src/index.js";

describeSandboxProviderConformance("bubblewrap", () => createBubblewrapSandboxProvider());
