/** Imports an Agent Skills folder into an org's `/skills/<name>/`, replacing any earlier version of it. */
import { InputError, parseSkill, SKILL_FILE_NAME, type Skill, type SkillFile } from "@outrig/core";
import { SKILLS_NAMESPACE } from "./create-database-mounts.js";
import type { FileAuthor, PostgresFileStore } from "./postgres-file-store.js";

export interface ImportSkillOptions {
  readonly author?: FileAuthor;
  /** The folder the files came from; when given, the skill's `name` must equal it (as the spec requires). */
  readonly directoryName?: string;
}

/**
 * Validates and stores a skill. Throws InputError `skill_invalid` (400) listing every reason when the
 * folder is not a valid skill, before anything is written. Files of an earlier import that the new
 * folder lacks are removed; unchanged files (same content, same executable bit) get no new version.
 */
export async function importSkill(
  store: PostgresFileStore,
  orgId: string,
  files: readonly SkillFile[],
  options: ImportSkillOptions = {},
): Promise<Skill> {
  const parsed = parseSkill(
    files,
    options.directoryName === undefined ? {} : { directoryName: options.directoryName },
  );
  if (!parsed.isValid) {
    throw new InputError("skill_invalid", `Invalid skill: ${parsed.reasons.join("; ")}`, 400);
  }
  const { skill } = parsed;
  const scope = { orgId, namespace: SKILLS_NAMESPACE };
  const root = `/${skill.name}`;
  const tooLarge = files.find((file) => file.content.byteLength > store.maxFileBytes);
  if (tooLarge !== undefined) {
    throw new InputError(
      "skill_invalid",
      `Invalid skill: ${tooLarge.path} is ${tooLarge.content.byteLength} bytes; the limit is ${store.maxFileBytes}`,
      400,
    );
  }
  const existing = await store.listHeads(orgId, [SKILLS_NAMESPACE]);
  const wanted = new Set(files.map((file) => `${root}/${file.path}`));
  for (const file of files) {
    const path = `${root}/${file.path}`;
    const found = await store.lookup(scope, path);
    const isExecutable = file.isExecutable === true;
    if (found.kind === "file") {
      const current = await store.read(scope, path);
      if (
        current.isExecutable === isExecutable &&
        Buffer.from(current.content).equals(Buffer.from(file.content))
      )
        continue;
    }
    await store.write(scope, path, file.content, {
      isExecutable,
      ...(options.author === undefined ? {} : { author: options.author }),
    });
  }
  for (const head of existing) {
    if (head.isDeleted || !head.path.startsWith(`${root}/`) || wanted.has(head.path)) continue;
    await store.remove(scope, head.path, options.author === undefined ? {} : { author: options.author });
  }
  return skill;
}

/**
 * For a single file written into the skills namespace (`outrig files put`): a skill folder's SKILL.md
 * (`/<folder>/SKILL.md`) must be one `importSkill` would accept. Throws InputError `skill_invalid` (400)
 * with the reasons; any other path passes.
 */
export function checkSkillFileWrite(path: string, content: Uint8Array): void {
  const segments = path.split("/").filter((segment) => segment !== "");
  if (segments.length !== 2 || segments[1] !== SKILL_FILE_NAME) return;
  const parsed = parseSkill([{ path: SKILL_FILE_NAME, content }], { directoryName: segments[0] as string });
  if (!parsed.isValid) {
    throw new InputError("skill_invalid", `Invalid skill: ${parsed.reasons.join("; ")}`, 400);
  }
}
