/** Finds the valid skills under a directory of a FileSystem (one folder per skill, each with SKILL.md). */
import { isFileError } from "../sandbox/sandbox-errors.js";
import type { FileSystem } from "../vfs/file-system.js";
import type { SkillSummary } from "./build-skills-prompt.js";
import { parseSkill, SKILL_FILE_NAME } from "./parse-skill.js";

export interface LoadedSkills {
  readonly skills: SkillSummary[];
  /** Folders that were skipped, with why: shown to operators, never to the model. */
  readonly rejected: { readonly location: string; readonly reasons: readonly string[] }[];
}

/**
 * Reads `<root>/<folder>/SKILL.md` for each folder and validates its frontmatter (only SKILL.md is read:
 * bodies of other files stay unread until the model asks). A missing root yields no skills.
 */
export async function loadSkills(fs: FileSystem, root = "/skills"): Promise<LoadedSkills> {
  const skills: SkillSummary[] = [];
  const rejected: LoadedSkills["rejected"] = [];
  let entries: Awaited<ReturnType<FileSystem["list"]>>;
  try {
    entries = await fs.list(root);
  } catch (error) {
    if (isFileError(error, "not_found")) return { skills, rejected };
    throw error;
  }
  for (const entry of entries) {
    if (entry.kind !== "directory") continue;
    const location = `${root}/${entry.path}/${SKILL_FILE_NAME}`;
    let content: Uint8Array;
    try {
      content = await fs.read(location);
    } catch (error) {
      if (!isFileError(error, "not_found")) throw error;
      rejected.push({ location, reasons: [`the folder has no ${SKILL_FILE_NAME}`] });
      continue;
    }
    const parsed = parseSkill([{ path: SKILL_FILE_NAME, content }], { directoryName: entry.path });
    if (parsed.isValid) {
      skills.push({ name: parsed.skill.name, description: parsed.skill.description, location });
    } else rejected.push({ location, reasons: parsed.reasons });
  }
  return { skills, rejected };
}
