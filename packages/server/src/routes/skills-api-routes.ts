/**
 * The Managed Agents API's Skills resource on the versioned skill store: skills
 * (`POST/GET /v1/skills`, `GET/DELETE /v1/skills/{id}`) and their versions (`POST/GET …/versions`,
 * `GET/DELETE …/versions/{version}`, `GET …/versions/{version}/content` as a ZIP archive). Skills are
 * the org's: every member reads them, admins change them. Uploads are multipart `files[]` parts whose
 * filenames are paths in one top-level folder with SKILL.md at its root.
 */
import { FileError, InputError } from "@outrig/core";
import {
  type PostgresSkillStore,
  SKILLS_WRITE_DENIED,
  type SkillRecord,
  type SkillVersionRecord,
  toSkillUpload,
} from "@outrig/storage";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { notFound } from "../http-error.js";
import { parseInput } from "../http-input.js";
import { decodeCursor, pageQueryFields, toPage } from "../page-cursor.js";
import { DEFAULT_MAX_SKILL_UPLOAD_BYTES, readMultipart, uploadBodyLimit } from "../upload-requests.js";
import { createZipArchive } from "../zip-archive.js";

export interface SkillsApiCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly role: string;
}

export type SkillsApiRoutesEnv = { Variables: { caller: SkillsApiCaller } };

export interface SkillsApiRoutesDependencies {
  readonly skills: PostgresSkillStore;
  /** The largest skill upload, all files and multipart framing together (default 8 MiB). */
  readonly maxUploadBytes?: number;
}

const ListQuery = z.strictObject({
  ...pageQueryFields,
  source: z
    .string()
    .regex(/^[a-z_]{1,64}$/)
    .optional(),
});
const VersionListQuery = z.strictObject({ ...pageQueryFields });
const SkillCursor = z.strictObject({ seq: z.number().int().min(0) });
const VersionCursor = z.strictObject({ version: z.string().regex(/^[0-9]{1,20}$/) });

/** The API's skill object (`BetaSkill`). */
export function toSkillObject(skill: SkillRecord) {
  return {
    id: skill.id,
    type: "skill" as const,
    display_name: skill.displayName,
    latest_version_id: skill.latestVersionId,
    source: { type: skill.source },
    created_at: skill.createdAt.toISOString(),
    updated_at: skill.updatedAt.toISOString(),
  };
}

/** The API's skill version object (`BetaSkillVersion`). */
export function toSkillVersionObject(version: SkillVersionRecord) {
  return {
    id: version.id,
    type: "skill_version" as const,
    skill_id: version.skillId,
    name: version.name,
    description: version.description,
    created_at: version.createdAt.toISOString(),
  };
}

const SKILL_ID = /^skill_[A-Za-z0-9]{1,64}$/;
const VERSION_ID = /^(latest|[0-9]{1,20})$/;

/** The skill id of the path; anything not shaped like one names no skill (404, never a database error). */
function skillIdOf(c: Context): string {
  const id = c.req.param("id") ?? "";
  if (!SKILL_ID.test(id)) throw notFound("Skill");
  return id;
}

function versionOf(c: Context): string {
  const version = c.req.param("version") ?? "";
  if (!VERSION_ID.test(version)) throw notFound("Skill version");
  return version;
}

async function readSkillUpload(c: Context, allowed: readonly string[]) {
  const fields = await readMultipart(c.req.raw, ["files[]", "files", "executable_files[]", ...allowed]);
  const parts = [...(fields.get("files[]") ?? []), ...(fields.get("files") ?? [])];
  const executable = fields.get("executable_files[]");
  if (executable?.some((value) => typeof value !== "string")) {
    throw new InputError("invalid_request", "executable_files: send file names as text fields", 400);
  }
  const uploaded = [];
  for (const part of parts) {
    if (!(part instanceof File))
      throw new InputError("invalid_request", "files: every part must be a file", 400);
    uploaded.push({ filename: part.name, content: new Uint8Array(await part.arrayBuffer()) });
  }
  return {
    upload: toSkillUpload(uploaded, executable === undefined ? undefined : new Set(executable as string[])),
    fields,
  };
}

export function registerSkillsApiRoutes<E extends SkillsApiRoutesEnv>(
  app: Hono<E>,
  deps: SkillsApiRoutesDependencies,
): void {
  const callerOf = (c: Context<E>): SkillsApiCaller => c.get("caller") as SkillsApiCaller;
  const maxUploadBytes = deps.maxUploadBytes ?? DEFAULT_MAX_SKILL_UPLOAD_BYTES;
  const requireAdmin = (caller: SkillsApiCaller) => {
    if (caller.role !== "admin") throw new FileError("permission_denied", "/skills", SKILLS_WRITE_DENIED);
  };
  const limit = uploadBodyLimit(maxUploadBytes, "The skill upload");

  app.use("/v1/skills", limit);
  app.use("/v1/skills/:id/versions", limit);
  app.post("/v1/skills", async (c) => {
    const caller = callerOf(c);
    requireAdmin(caller);
    const { upload, fields } = await readSkillUpload(c, ["display_name"]);
    const displayNames = fields.get("display_name") ?? [];
    if (displayNames.length > 1 || (displayNames[0] !== undefined && typeof displayNames[0] !== "string")) {
      throw new InputError("invalid_request", "display_name: send one text field", 400);
    }
    const { skill } = await deps.skills.create(caller.orgId, upload, {
      displayName: (displayNames[0] as string | undefined) ?? null,
      author: { userId: caller.userId },
    });
    return c.json(toSkillObject(skill));
  });

  app.get("/v1/skills", async (c) => {
    const query = parseInput(ListQuery, c.req.query());
    const cursor = query.page === undefined ? undefined : decodeCursor(query.page, SkillCursor);
    const skills = await deps.skills.list(callerOf(c).orgId, {
      limit: query.limit + 1,
      ...(cursor === undefined ? {} : { afterSeq: cursor.seq }),
      ...(query.source === undefined ? {} : { source: query.source }),
    });
    return c.json(toPage(skills, query.limit, toSkillObject, (skill) => ({ seq: skill.seq })));
  });

  app.get("/v1/skills/:id", async (c) => {
    const skill = await deps.skills.get(callerOf(c).orgId, skillIdOf(c));
    if (skill === undefined) throw notFound("Skill");
    return c.json(toSkillObject(skill));
  });

  app.delete("/v1/skills/:id", async (c) => {
    const caller = callerOf(c);
    requireAdmin(caller);
    const id = skillIdOf(c);
    if (!(await deps.skills.delete(caller.orgId, id, { author: { userId: caller.userId } }))) {
      throw notFound("Skill");
    }
    return c.json({ id, type: "skill_deleted" });
  });

  app.post("/v1/skills/:id/versions", async (c) => {
    const caller = callerOf(c);
    requireAdmin(caller);
    const id = skillIdOf(c);
    // A missing skill is a 404 before the body is judged.
    if ((await deps.skills.get(caller.orgId, id)) === undefined) throw notFound("Skill");
    const { upload } = await readSkillUpload(c, []);
    const version = await deps.skills.createVersion(caller.orgId, id, upload, {
      author: { userId: caller.userId },
    });
    return c.json(toSkillVersionObject(version));
  });

  app.get("/v1/skills/:id/versions", async (c) => {
    const query = parseInput(VersionListQuery, c.req.query());
    const cursor = query.page === undefined ? undefined : decodeCursor(query.page, VersionCursor);
    const versions = await deps.skills.listVersions(callerOf(c).orgId, skillIdOf(c), {
      limit: query.limit + 1,
      ...(cursor === undefined ? {} : { afterVersionId: cursor.version }),
    });
    if (versions === undefined) throw notFound("Skill");
    return c.json(
      toPage(versions, query.limit, toSkillVersionObject, (version) => ({ version: version.id })),
    );
  });

  app.get("/v1/skills/:id/versions/:version", async (c) => {
    const version = await deps.skills.getVersion(callerOf(c).orgId, skillIdOf(c), versionOf(c));
    if (version === undefined) throw notFound("Skill version");
    return c.json(toSkillVersionObject(version));
  });

  app.delete("/v1/skills/:id/versions/:version", async (c) => {
    const caller = callerOf(c);
    requireAdmin(caller);
    const deleted = await deps.skills.deleteVersion(caller.orgId, skillIdOf(c), versionOf(c), {
      author: { userId: caller.userId },
    });
    if (deleted === undefined) throw notFound("Skill version");
    return c.json({ id: deleted, type: "skill_version_deleted" });
  });

  app.get("/v1/skills/:id/versions/:version/content", async (c) => {
    const found = await deps.skills.readVersionFiles(callerOf(c).orgId, skillIdOf(c), versionOf(c));
    if (found === undefined) throw notFound("Skill version");
    const name = found.version.name;
    const archive = createZipArchive(
      found.files.map((file) => ({
        path: `${name}/${file.path}`,
        content: file.content,
        ...(file.isExecutable === true ? { isExecutable: true } : {}),
      })),
    );
    return c.body(archive as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/zip",
      "content-disposition": `attachment; filename="${name}.zip"`,
    });
  });
}
