/**
 * Deletes the runc containers of servers that are gone (see
 * docs/decisions/2026-12-04-orphan-sandbox-sweep.md). A container names its server in the
 * RUNC_OWNER_ANNOTATION; containers without it (older servers) and running ones are left alone.
 */
import { rm } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { isOwnerAlive } from "../cgroups/sweep-orphaned-cgroups.js";
import { type RuncCommandOptions, runRunc } from "./runc-cli.js";

/** The config.json annotation naming the owning server (`server-<pid>-<start time>`). */
export const RUNC_OWNER_ANNOTATION = "org.outrig.owner";

/** The fields of one `runc list --format json` entry that the sweep reads. */
export interface RuncListEntry {
  readonly id: string;
  readonly status: string;
  readonly bundle?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** What a runc sweep did. */
export interface RuncSweepResult {
  /** Paused, created or stopped containers of gone servers, deleted with their sandbox directory. */
  deletedContainers: number;
  /** Running containers of gone servers, left alone (see the ADR). */
  runningOrphans: number;
  failures: string[];
}

/**
 * The containers to delete: those whose owner annotation names a server that is gone, unless they
 * are running. Pure; `isAlive` answers for each owner.
 */
export function selectOrphanedContainers(
  containers: readonly RuncListEntry[],
  isAlive: (owner: string) => boolean,
): { toDelete: RuncListEntry[]; runningOrphans: number } {
  const toDelete: RuncListEntry[] = [];
  let runningOrphans = 0;
  for (const container of containers) {
    const owner = container.annotations?.[RUNC_OWNER_ANNOTATION];
    if (owner === undefined || isAlive(owner)) continue;
    if (container.status === "running") runningOrphans += 1;
    else toDelete.push(container);
  }
  return { toDelete, runningOrphans };
}

/**
 * Lists the containers under `runc.stateRoot` and deletes the orphans (`runc delete --force`, which
 * kills a paused container's processes too), then each one's sandbox directory when its bundle is
 * `<stateDir>/<sandbox>/bundle`. Never throws: failures are listed.
 */
export async function sweepOrphanedRuncContainers(
  runc: RuncCommandOptions,
  options: { readonly stateDir: string; readonly procRoot?: string },
): Promise<RuncSweepResult> {
  const result: RuncSweepResult = { deletedContainers: 0, runningOrphans: 0, failures: [] };
  let containers: RuncListEntry[];
  try {
    containers =
      (JSON.parse(await runRunc(runc, ["list", "--format", "json"])) as RuncListEntry[] | null) ?? [];
  } catch (error) {
    result.failures.push(`runc list: ${error instanceof Error ? error.message : String(error)}`);
    return result;
  }
  const liveness = new Map<string, boolean>();
  for (const container of containers) {
    const owner = container.annotations?.[RUNC_OWNER_ANNOTATION];
    if (owner !== undefined && !liveness.has(owner))
      liveness.set(owner, await isOwnerAlive(owner, options.procRoot));
  }
  const { toDelete, runningOrphans } = selectOrphanedContainers(
    containers,
    (owner) => liveness.get(owner) ?? true,
  );
  result.runningOrphans = runningOrphans;
  const stateDir = resolve(options.stateDir);
  for (const container of toDelete) {
    try {
      await runRunc(runc, ["delete", "--force", container.id]);
      result.deletedContainers += 1;
    } catch (error) {
      result.failures.push(`${container.id}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const bundle = container.bundle === undefined ? undefined : resolve(container.bundle);
    // Invariant: only a directory of this provider's layout is removed, never an arbitrary bundle path.
    if (bundle !== undefined && basename(bundle) === "bundle" && dirname(dirname(bundle)) === stateDir)
      await rm(dirname(bundle), { recursive: true, force: true }).catch(() => undefined);
  }
  return result;
}

/** One line for the log, or undefined when there was nothing to do. */
export function describeRuncSweep(result: RuncSweepResult): string | undefined {
  const { deletedContainers, runningOrphans, failures } = result;
  if (deletedContainers + runningOrphans + failures.length === 0) return undefined;
  let line = `outrig sandboxes: deleted ${deletedContainers} orphaned runc containers`;
  if (runningOrphans > 0) line += `; left ${runningOrphans} running orphaned containers`;
  if (failures.length > 0) line += `; ${failures.length} failed (${failures[0]})`;
  return line;
}
