/** Checks a provider's create options before any side effect (shared by every provider here). */

import { isAbsolute, posix } from "node:path";
import { type CreateSandboxOptions, SandboxError } from "@outrig/core";

const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Throws SandboxError `sandbox_invalid_options` naming the first bad option. */
export function validateCreateOptions(options: CreateSandboxOptions): void {
  const fail = (message: string) => {
    throw new SandboxError("sandbox_invalid_options", message);
  };
  for (const name of Object.keys(options.env ?? {}))
    if (!ENV_NAME_PATTERN.test(name)) fail(`invalid env name: ${name}`);
  for (const mount of [...(options.readOnlyMounts ?? []), ...(options.writableMounts ?? [])]) {
    if (!isAbsolute(mount.hostPath)) fail(`read-only mount hostPath must be absolute: ${mount.hostPath}`);
    const target = posix.normalize(mount.sandboxPath);
    if (
      !target.startsWith("/") ||
      target === "/" ||
      target === "/workspace" ||
      mount.sandboxPath.includes("..")
    )
      fail(`invalid read-only mount sandboxPath: ${mount.sandboxPath}`);
  }
  if (options.egressSocketPath !== undefined && !isAbsolute(options.egressSocketPath))
    fail(`egressSocketPath must be absolute: ${options.egressSocketPath}`);
  const { memoryBytes, pids, cpus, diskBytes } = options.limits ?? {};
  for (const [name, value] of Object.entries({ memoryBytes, pids, cpus, diskBytes }))
    if (value !== undefined && !(Number.isFinite(value) && value > 0))
      fail(`limits.${name} must be a positive number`);
}
