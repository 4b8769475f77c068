/**
 * `outrig skills add|list|rm`: Agent Skills through the Skills API, with the official SDK as the client.
 * `add` uploads a folder as a new skill, or as a new version of the org's skill of the same name.
 */
import fs from "node:fs/promises";
import path from "node:path";
import Anthropic, { toFile } from "@anthropic-ai/sdk";

const MAX_SKILL_FILES = 500;

export const SKILLS_USAGE = `usage: outrig skills add <folder> [--server URL]   upload a skill folder (a new skill, or a new version of it)
       outrig skills list [--server URL]           the org's skills
       outrig skills rm <skill_id> [--server URL]  delete a skill and its versions (admins)`;

export interface SkillsCommandOptions {
  readonly server: string;
  readonly apiKey: string;
  readonly out: (line: string) => void;
}

/** Runs one skills subcommand; throws `code: message` from the server's error body. */
export async function skillsCommand(argv: readonly string[], options: SkillsCommandOptions): Promise<void> {
  const client = new Anthropic({ apiKey: options.apiKey, baseURL: options.server, maxRetries: 0 });
  const [subcommand, target] = argv;
  try {
    switch (subcommand) {
      case "add": {
        if (!target || argv.length !== 2) throw new Error(SKILLS_USAGE);
        const added = await skillsAdd(client, target);
        options.out(
          `${added.isNew ? "imported skill" : "added a version to skill"} ${added.name} (${added.skillId}, version ${added.versionId})`,
        );
        return;
      }
      case "list": {
        if (argv.length !== 1) throw new Error(SKILLS_USAGE);
        for await (const skill of client.beta.skills.list({ limit: 100 })) {
          options.out(`${skill.id}\t${skill.display_name}\t${skill.latest_version_id}`);
        }
        return;
      }
      case "rm": {
        if (!target || argv.length !== 2) throw new Error(SKILLS_USAGE);
        await client.beta.skills.delete(target);
        options.out(`deleted ${target}`);
        return;
      }
      default:
        throw new Error(SKILLS_USAGE);
    }
  } catch (error) {
    if (error instanceof Anthropic.APIError) {
      const body = error.error as { error?: { code?: string; message?: string } } | undefined;
      throw new Error(`${body?.error?.code ?? error.status}: ${body?.error?.message ?? error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * Reads every regular file under the folder (no symlinks, no dot-folders) and uploads them as
 * `<folder name>/<path>`. A skill of the same name gets a new version instead.
 */
async function skillsAdd(
  client: Anthropic,
  folder: string,
): Promise<{ isNew: boolean; name: string; skillId: string; versionId: string }> {
  const root = path.resolve(folder);
  const stat = await fs.stat(root).catch(() => null);
  if (!stat?.isDirectory()) throw new Error(`${folder} is not a folder`);
  const top = path.basename(root);
  const files: File[] = [];
  const executableFiles: string[] = [];
  for (const entry of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const relative = path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join("/");
    if (relative.split("/").some((part) => part.startsWith("."))) continue;
    const local = path.join(root, relative);
    files.push(await toFile(await fs.readFile(local), `${top}/${relative}`));
    // Scripts keep their executable bit (any x bit counts, as in git): Outrig's executable_files[].
    if (((await fs.stat(local)).mode & 0o111) !== 0) executableFiles.push(`${top}/${relative}`);
    if (files.length > MAX_SKILL_FILES) throw new Error(`a skill may hold at most ${MAX_SKILL_FILES} files`);
  }
  try {
    const skill = await client.beta.skills.create({ files, ...withExecutables(executableFiles) });
    const version = await client.beta.skills.versions.retrieve(skill.latest_version_id, {
      skill_id: skill.id,
    });
    return { isNew: true, name: version.name, skillId: skill.id, versionId: version.id };
  } catch (error) {
    if (!(error instanceof Anthropic.ConflictError)) throw error;
  }
  // The org has a skill of this name: find it and add a version.
  const name = /^name:\s*["']?([a-z0-9-]+)/m.exec(
    (await fs.readFile(path.join(root, "SKILL.md"), "utf8").catch(() => "")) || "",
  )?.[1];
  for await (const skill of client.beta.skills.list({ limit: 100 })) {
    const latest = await client.beta.skills.versions.retrieve("latest", { skill_id: skill.id });
    if (latest.name !== name) continue;
    const version = await client.beta.skills.versions.create(skill.id, {
      files,
      ...withExecutables(executableFiles),
    });
    return { isNew: false, name: version.name, skillId: skill.id, versionId: version.id };
  }
  throw new Error(`skill_exists: a skill named "${name}" exists but could not be found`);
}

/**
 * Outrig's `executable_files[]` form field, which the SDK sends as it sends any extra body field
 * (arrays as `name[]` parts); the SDK's types do not know it, hence `object`.
 */
function withExecutables(paths: readonly string[]): object {
  return { executable_files: [...paths] };
}
