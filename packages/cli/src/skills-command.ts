/** `outrig skills add ./folder`: uploads an Agent Skill folder through the API (admins only). */
import fs from "node:fs/promises";
import path from "node:path";

const MAX_SKILL_FILES = 500;

export interface SkillsAddOptions {
  readonly folder: string;
  readonly server: string;
  readonly apiKey: string;
}

/**
 * Reads every regular file under the folder (no symlinks, no dot-folders) and posts it with its
 * executable bit. Throws with the server's reason.
 */
export async function skillsAddCommand(
  options: SkillsAddOptions,
): Promise<{ name: string; location: string }> {
  const root = path.resolve(options.folder);
  const stat = await fs.stat(root).catch(() => null);
  if (!stat?.isDirectory()) throw new Error(`${options.folder} is not a folder`);
  const files: { path: string; content: string; encoding: "base64"; isExecutable?: boolean }[] = [];
  for (const entry of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const relative = path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join("/");
    if (relative.split("/").some((part) => part.startsWith("."))) continue;
    const local = path.join(root, relative);
    // Scripts keep their executable bit in the sandbox's /skills (any x bit counts, as in git).
    const isExecutable = ((await fs.stat(local)).mode & 0o111) !== 0;
    files.push({
      path: relative,
      content: (await fs.readFile(local)).toString("base64"),
      encoding: "base64",
      ...(isExecutable ? { isExecutable } : {}),
    });
    if (files.length > MAX_SKILL_FILES) throw new Error(`a skill may hold at most ${MAX_SKILL_FILES} files`);
  }
  const response = await fetch(`${options.server}/v1/skills`, {
    method: "POST",
    headers: { authorization: `Bearer ${options.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ files }),
  });
  const body = (await response.json().catch(() => ({}))) as {
    name?: string;
    location?: string;
    error?: { code?: string; message?: string };
  };
  if (!response.ok)
    throw new Error(`${body.error?.code ?? response.status}: ${body.error?.message ?? "import failed"}`);
  return { name: String(body.name), location: String(body.location) };
}
