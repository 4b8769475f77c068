/**
 * The skills a session of the API sees at `/skills`: exactly its agent's custom skills, each at the
 * version the session pinned when it was created (an explicit version, or the newest one then for
 * `latest`), read-only. The file tools read them from memory (a ReadOnlyFileTree); bash reads the same
 * bytes from a per-session host copy bound read-only at `/skills`. A new version of a skill, or another
 * skill of the org, never shows up in a session that did not pin it.
 */
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  type AgentSkillRef,
  type FileSystem,
  InputError,
  ReadOnlyFileTree,
  type SkillFile,
} from "@outrig/core";
import type { AgentSkill } from "@outrig/protocol";
import type { PostgresSkillStore } from "@outrig/storage";

/** One pinned skill: its folder name under /skills and the files of its pinned version. */
export interface PinnedSkill {
  readonly name: string;
  readonly files: readonly SkillFile[];
}

/** What a session mounts at /skills. */
export interface PinnedSkillsMount {
  /** For the file tools (mounted at /skills). */
  readonly fileSystem: FileSystem;
  /** The host copy bound read-only at /skills in the sandbox. */
  readonly hostDir: string;
}

export const PINNED_SKILLS_READ_ONLY =
  "/skills holds the versions of the agent's skills this session pinned and is read-only. A skill changes only through the Skills API (a new version), which later sessions pin.";

/** The store calls pinning needs (PostgresSkillStore has them). */
type SkillVersions = Pick<PostgresSkillStore, "getVersion" | "readVersionFiles">;

/**
 * Each custom skill with its version pinned (`latest` resolved to the newest version id now); Anthropic's
 * skills pass as they are (this server has none to load). 404 for a skill or version the org lacks.
 */
export async function pinSkillVersions(
  store: SkillVersions,
  orgId: string,
  skills: readonly AgentSkill[],
): Promise<AgentSkill[]> {
  return Promise.all(
    skills.map(async (skill, index) => {
      if (skill.type !== "custom") return skill;
      const version = await store.getVersion(orgId, skill.skill_id, skill.version);
      if (!version)
        throw new InputError(
          "not_found",
          `agent.skills[${index}]: the org has no skill ${skill.skill_id}${skill.version === "latest" ? "" : ` at version ${skill.version}`}`,
          404,
        );
      return { ...skill, version: version.id };
    }),
  );
}

/** The files of each pinned skill (a skill pinned without a version, from before pinning, reads its latest). */
export async function loadPinnedSkills(
  store: SkillVersions,
  orgId: string,
  skills: readonly AgentSkillRef[],
): Promise<PinnedSkill[]> {
  const loaded: PinnedSkill[] = [];
  for (const skill of skills) {
    const found = await store.readVersionFiles(orgId, skill.skillId, String(skill.version ?? "latest"));
    // A skill deleted since the session started is gone from it too.
    if (found) loaded.push({ name: found.version.name, files: found.files });
  }
  return loaded;
}

/**
 * Writes the pinned skills to `hostDir` (executable files 0755, others 0644) and answers the mount for
 * the file tools over the same files. A copy that already holds exactly these files (a digest kept
 * beside it, `<hostDir>.digest`) is left alone, so a sandbox that has it bound never sees it replaced.
 */
export async function mountPinnedSkills(
  skills: readonly PinnedSkill[],
  hostDir: string,
): Promise<PinnedSkillsMount> {
  const entries = skills.flatMap((skill) =>
    skill.files.map((file) => ({ ...file, path: `${skill.name}/${file.path}` })),
  );
  const fileSystem = new ReadOnlyFileTree(entries, PINNED_SKILLS_READ_ONLY);
  const hash = createHash("sha256");
  for (const entry of entries)
    hash
      .update(`${entry.path}\0${entry.isExecutable ? 1 : 0}\0${entry.content.byteLength}\0`)
      .update(entry.content);
  const digest = hash.digest("hex");
  const digestFile = `${hostDir}.digest`;
  if ((await readFile(digestFile, "utf8").catch(() => "")) === digest) return { fileSystem, hostDir };
  await rm(hostDir, { recursive: true, force: true });
  await mkdir(hostDir, { recursive: true, mode: 0o755 });
  for (const entry of entries) {
    const target = path.join(hostDir, ...entry.path.split("/"));
    // Invariant: skill paths were checked when the skill was stored (no `..`, no absolute paths).
    if (!target.startsWith(`${hostDir}${path.sep}`)) continue;
    await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    await writeFile(target, entry.content);
    await chmod(target, entry.isExecutable ? 0o755 : 0o644);
  }
  await writeFile(digestFile, digest);
  return { fileSystem, hostDir };
}
