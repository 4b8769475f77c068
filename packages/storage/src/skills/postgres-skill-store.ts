/**
 * The Skills API's skills and versions on the versioned file store: a skill's latest version is its
 * folder `/skills/<name>/` (what sessions load), and each version keeps a manifest naming the immutable
 * file versions it was made of, so any version can be read back after later ones replaced the folder.
 * Changes to one skill serialize on its row (SELECT … FOR UPDATE).
 */
import { FileError, InputError, parseSkill, type SkillFile } from "@outrig/core";
import type pg from "pg";
import { SKILLS_NAMESPACE } from "../files/create-database-mounts.js";
import { importSkill } from "../files/import-skill.js";
import type { FileAuthor, PostgresFileStore } from "../files/postgres-file-store.js";
import { createId } from "../ids/create-id.js";
import { withTransaction } from "../with-transaction.js";
import type { SkillUpload } from "./skill-upload.js";

export interface SkillRecord {
  readonly id: string;
  readonly seq: number;
  readonly orgId: string;
  readonly name: string;
  readonly displayName: string;
  readonly source: string;
  readonly latestVersionId: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface SkillVersionRecord {
  readonly id: string;
  readonly skillId: string;
  readonly name: string;
  readonly description: string;
  readonly createdAt: Date;
}

/** One file of a version's manifest: a path in the skill folder and the file-store version it was. */
interface ManifestEntry {
  readonly path: string;
  readonly version: number;
  readonly isExecutable: boolean;
}

interface SkillRow {
  id: string;
  seq: string;
  org_id: string;
  name: string;
  display_name: string;
  source: string;
  created_at: Date;
  updated_at: Date;
  latest_version_id: string | null;
}

interface VersionRow {
  id: string;
  skill_id: string;
  name: string;
  description: string;
  files: ManifestEntry[];
  created_at: Date;
}

const MAX_DISPLAY_NAME_LENGTH = 255;
/** Version ids compare as numbers: longer is newer, then text order. */
const VERSION_ORDER = "length(id) DESC, id DESC";
const SKILL_COLUMNS = `s.id, s.seq, s.org_id, s.name, s.display_name, s.source, s.created_at, s.updated_at,
  (SELECT v.id FROM api_skill_versions v WHERE v.skill_id = s.id ORDER BY length(v.id) DESC, v.id DESC LIMIT 1)
    AS latest_version_id`;

export class PostgresSkillStore {
  readonly #pool: pg.Pool;
  readonly #files: PostgresFileStore;

  constructor(pool: pg.Pool, files: PostgresFileStore) {
    this.#pool = pool;
    this.#files = files;
  }

  /**
   * Creates a skill from an upload. Throws InputError `skill_invalid` (400) for a bad skill, and
   * `skill_exists` (409) when the org already has a skill of that name (the name is its folder).
   */
  async create(
    orgId: string,
    upload: SkillUpload,
    options: { displayName?: string | null; author?: FileAuthor } = {},
  ): Promise<{ skill: SkillRecord; version: SkillVersionRecord }> {
    const displayName = options.displayName ?? undefined;
    if (displayName !== undefined) checkDisplayName(displayName);
    const id = createId("skill");
    const versionId = await withTransaction(this.#pool, async (client) => {
      // Validates before anything is written, so a bad skill claims no name.
      const skill = checkUpload(upload);
      try {
        await client.query(
          `INSERT INTO api_skills (id, org_id, name, display_name) VALUES ($1, $2, $3, $4)`,
          [id, orgId, skill.name, displayName ?? skill.name],
        );
      } catch (error) {
        if ((error as { code?: string }).code === "23505") {
          throw new InputError(
            "skill_exists",
            `A skill named "${skill.name}" already exists; add a version to it instead`,
            409,
            { cause: error },
          );
        }
        throw error;
      }
      return this.#addVersion(client, orgId, id, upload, options.author);
    });
    return {
      skill: await this.#mustGet(orgId, id),
      version: await this.#mustGetVersion(orgId, id, versionId),
    };
  }

  /** Adds a version; its SKILL.md must keep the skill's name (400 `skill_invalid` otherwise). 404 for no such skill. */
  async createVersion(
    orgId: string,
    skillId: string,
    upload: SkillUpload,
    options: { author?: FileAuthor } = {},
  ): Promise<SkillVersionRecord> {
    const versionId = await withTransaction(this.#pool, async (client) => {
      const locked = await lockSkill(client, orgId, skillId);
      const skill = checkUpload(upload);
      if (skill.name !== locked.name) {
        throw new InputError(
          "skill_invalid",
          `Invalid skill: name "${skill.name}" must stay "${locked.name}", the skill's name`,
          400,
        );
      }
      const id = await this.#addVersion(client, orgId, skillId, upload, options.author);
      await client.query("UPDATE api_skills SET updated_at = clock_timestamp() WHERE id = $1", [skillId]);
      return id;
    });
    return this.#mustGetVersion(orgId, skillId, versionId);
  }

  async get(orgId: string, skillId: string): Promise<SkillRecord | undefined> {
    const { rows } = await this.#pool.query<SkillRow>(
      `SELECT ${SKILL_COLUMNS} FROM api_skills s WHERE s.org_id = $1 AND s.id = $2`,
      [orgId, skillId],
    );
    return rows[0] === undefined ? undefined : toSkill(rows[0]);
  }

  /** Newest first; `limit` rows after `afterSeq`. `source` filters (only `custom` exists here). */
  async list(
    orgId: string,
    options: { limit: number; afterSeq?: number; source?: string },
  ): Promise<SkillRecord[]> {
    const values: unknown[] = [orgId];
    const conditions = ["s.org_id = $1"];
    if (options.source !== undefined) {
      values.push(options.source);
      conditions.push(`s.source = $${values.length}`);
    }
    if (options.afterSeq !== undefined) {
      values.push(options.afterSeq);
      conditions.push(`s.seq < $${values.length}`);
    }
    values.push(options.limit);
    const { rows } = await this.#pool.query<SkillRow>(
      `SELECT ${SKILL_COLUMNS} FROM api_skills s WHERE ${conditions.join(" AND ")}
       ORDER BY s.seq DESC LIMIT $${values.length}`,
      values,
    );
    return rows.map(toSkill);
  }

  /** Deletes the skill, its versions and its folder. False when there is no such skill. */
  async delete(orgId: string, skillId: string, options: { author?: FileAuthor } = {}): Promise<boolean> {
    return withTransaction(this.#pool, async (client) => {
      let locked: { name: string };
      try {
        locked = await lockSkill(client, orgId, skillId);
      } catch (error) {
        if (error instanceof InputError && error.status === 404) return false;
        throw error;
      }
      await this.#removeFolder(orgId, locked.name, options.author);
      await client.query("DELETE FROM api_skills WHERE id = $1", [skillId]);
      return true;
    });
  }

  /** Newest first; `limit` rows older than `afterVersionId`. Undefined when there is no such skill. */
  async listVersions(
    orgId: string,
    skillId: string,
    options: { limit: number; afterVersionId?: string },
  ): Promise<SkillVersionRecord[] | undefined> {
    if ((await this.get(orgId, skillId)) === undefined) return undefined;
    const values: unknown[] = [orgId, skillId];
    let after = "";
    if (options.afterVersionId !== undefined) {
      values.push(options.afterVersionId);
      after = `AND (length(id), id) < (length($3::text), $3::text)`;
    }
    values.push(options.limit);
    const { rows } = await this.#pool.query<VersionRow>(
      `SELECT id, skill_id, name, description, files, created_at FROM api_skill_versions
       WHERE org_id = $1 AND skill_id = $2 ${after} ORDER BY ${VERSION_ORDER} LIMIT $${values.length}`,
      values,
    );
    return rows.map(toVersion);
  }

  /** A version by id, or `latest`. */
  async getVersion(orgId: string, skillId: string, version: string): Promise<SkillVersionRecord | undefined> {
    const row = await this.#versionRow(this.#pool, orgId, skillId, version);
    return row === undefined ? undefined : toVersion(row);
  }

  /**
   * Deletes a version. When it was the latest, the folder goes back to the version before it. The only
   * version cannot be deleted (a skill holds at least one): 400 `skill_version_required`. False when
   * there is no such version.
   */
  async deleteVersion(
    orgId: string,
    skillId: string,
    version: string,
    options: { author?: FileAuthor } = {},
  ): Promise<string | undefined> {
    return withTransaction(this.#pool, async (client) => {
      try {
        await lockSkill(client, orgId, skillId);
      } catch (error) {
        if (error instanceof InputError && error.status === 404) return undefined;
        throw error;
      }
      const { rows } = await client.query<VersionRow>(
        `SELECT id, skill_id, name, description, files, created_at FROM api_skill_versions
         WHERE skill_id = $1 ORDER BY ${VERSION_ORDER} LIMIT 2`,
        [skillId],
      );
      const target = await this.#versionRow(client, orgId, skillId, version);
      if (target === undefined) return undefined;
      if (rows.length < 2) {
        throw new InputError(
          "skill_version_required",
          "A skill holds at least one version: delete the skill instead of its only version",
          400,
        );
      }
      await client.query("DELETE FROM api_skill_versions WHERE skill_id = $1 AND id = $2", [
        skillId,
        target.id,
      ]);
      if (rows[0]?.id === target.id) {
        const previous = rows[1] as VersionRow;
        const files = await this.#readManifest(orgId, previous.files);
        await importSkill(this.#files, orgId, files, {
          ...(options.author === undefined ? {} : { author: options.author }),
        });
      }
      await client.query("UPDATE api_skills SET updated_at = clock_timestamp() WHERE id = $1", [skillId]);
      return target.id;
    });
  }

  /** A version's files (from the immutable file versions its manifest names), for downloads and sessions. */
  async readVersionFiles(
    orgId: string,
    skillId: string,
    version: string,
  ): Promise<{ version: SkillVersionRecord; files: SkillFile[] } | undefined> {
    const row = await this.#versionRow(this.#pool, orgId, skillId, version);
    if (row === undefined) return undefined;
    return { version: toVersion(row), files: await this.#readManifest(orgId, row.files) };
  }

  async #readManifest(orgId: string, manifest: readonly ManifestEntry[]): Promise<SkillFile[]> {
    const scope = { orgId, namespace: SKILLS_NAMESPACE };
    const files: SkillFile[] = [];
    for (const entry of manifest) {
      const stored = await this.#files.read(scope, entry.path, { version: entry.version });
      const relative = entry.path.split("/").slice(2).join("/");
      files.push({
        path: relative,
        content: stored.content,
        ...(entry.isExecutable ? { isExecutable: true } : {}),
      });
    }
    return files;
  }

  /** Writes the upload as the skill's folder and records the version; returns its id. */
  async #addVersion(
    client: pg.PoolClient,
    orgId: string,
    skillId: string,
    upload: SkillUpload,
    author: FileAuthor | undefined,
  ): Promise<string> {
    const skill = await importSkill(this.#files, orgId, upload.files, {
      ...(author === undefined ? {} : { author }),
    });
    const scope = { orgId, namespace: SKILLS_NAMESPACE };
    const manifest: ManifestEntry[] = [];
    for (const file of upload.files) {
      const path = `/${skill.name}/${file.path}`;
      const found = await this.#files.lookup(scope, path);
      if (found.kind !== "file")
        throw new FileError("not_found", path, "The skill file vanished while stored");
      manifest.push({ path, version: found.version, isExecutable: file.isExecutable === true });
    }
    const { rows } = await client.query<{ id: string | null }>(
      `SELECT max(id::numeric)::text AS id FROM api_skill_versions WHERE skill_id = $1`,
      [skillId],
    );
    const nowMicros = BigInt(Date.now()) * 1000n;
    const last = rows[0]?.id == null ? 0n : BigInt(rows[0].id);
    const id = (nowMicros > last ? nowMicros : last + 1n).toString();
    await client.query(
      `INSERT INTO api_skill_versions (skill_id, id, org_id, name, description, files)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [skillId, id, orgId, skill.name, skill.description, JSON.stringify(manifest)],
    );
    return id;
  }

  async #removeFolder(orgId: string, name: string, author: FileAuthor | undefined): Promise<void> {
    try {
      await this.#files.remove({ orgId, namespace: SKILLS_NAMESPACE }, `/${name}`, {
        ...(author === undefined ? {} : { author }),
      });
    } catch (error) {
      if (!(error instanceof FileError && error.code === "not_found")) throw error;
    }
  }

  async #versionRow(
    queryable: pg.Pool | pg.PoolClient,
    orgId: string,
    skillId: string,
    version: string,
  ): Promise<VersionRow | undefined> {
    if (version !== "latest" && !/^[0-9]{1,20}$/.test(version)) return undefined;
    const { rows } = await queryable.query<VersionRow>(
      version === "latest"
        ? `SELECT id, skill_id, name, description, files, created_at FROM api_skill_versions
           WHERE org_id = $1 AND skill_id = $2 ORDER BY ${VERSION_ORDER} LIMIT 1`
        : `SELECT id, skill_id, name, description, files, created_at FROM api_skill_versions
           WHERE org_id = $1 AND skill_id = $2 AND id = $3`,
      version === "latest" ? [orgId, skillId] : [orgId, skillId, version],
    );
    return rows[0];
  }

  async #mustGet(orgId: string, skillId: string): Promise<SkillRecord> {
    const skill = await this.get(orgId, skillId);
    if (skill === undefined) throw notFound("Skill");
    return skill;
  }

  async #mustGetVersion(orgId: string, skillId: string, versionId: string): Promise<SkillVersionRecord> {
    const version = await this.getVersion(orgId, skillId, versionId);
    if (version === undefined) throw notFound("Skill version");
    return version;
  }
}

/** Validates the upload as importSkill will (before anything is written) and returns its name. */
function checkUpload(upload: SkillUpload): { name: string } {
  const parsed = parseSkill(upload.files);
  if (!parsed.isValid) {
    throw new InputError("skill_invalid", `Invalid skill: ${parsed.reasons.join("; ")}`, 400);
  }
  // Postgres text holds no NUL: a description with one is a bad skill, not a database error.
  if (parsed.skill.description.includes("\u0000")) {
    throw new InputError("skill_invalid", "Invalid skill: description must not contain NUL characters", 400);
  }
  return { name: parsed.skill.name };
}

function checkDisplayName(displayName: string): void {
  if (
    displayName.length === 0 ||
    displayName.length > MAX_DISPLAY_NAME_LENGTH ||
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
    /[\u0000-\u001f\u007f]/.test(displayName)
  ) {
    throw new InputError(
      "invalid_request",
      `display_name must be a single line of 1-${MAX_DISPLAY_NAME_LENGTH} characters`,
      400,
    );
  }
}

async function lockSkill(client: pg.PoolClient, orgId: string, skillId: string): Promise<{ name: string }> {
  const { rows } = await client.query<{ name: string }>(
    "SELECT name FROM api_skills WHERE org_id = $1 AND id = $2 FOR UPDATE",
    [orgId, skillId],
  );
  if (rows[0] === undefined) throw notFound("Skill");
  return rows[0];
}

function notFound(what: string): InputError {
  return new InputError("not_found", `${what} not found`, 404);
}

function toSkill(row: SkillRow): SkillRecord {
  return {
    id: row.id,
    seq: Number(row.seq),
    orgId: row.org_id,
    name: row.name,
    displayName: row.display_name,
    source: row.source,
    latestVersionId: row.latest_version_id ?? "",
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toVersion(row: VersionRow): SkillVersionRecord {
  return {
    id: row.id,
    skillId: row.skill_id,
    name: row.name,
    description: row.description,
    createdAt: row.created_at,
  };
}
