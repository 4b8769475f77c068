import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDatabase,
  createSecretKeyring,
  type Database,
  loadMasterKey,
  type MasterKey,
  masterKeyFromBase64,
  PostgresSecretResolver,
  PostgresSecretStore,
} from "../src/index.js";

const SECRET = "ghp_Sup3rS3cretT0kenValue_do_not_leak_4711";

function randomKey(): MasterKey {
  return masterKeyFromBase64(randomBytes(32).toString("base64"), "test");
}

describe("secrets vault", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let orgId: string;
  let userId: string;
  let otherUserId: string;
  const key = randomKey();
  let store: PostgresSecretStore;
  let resolver: PostgresSecretResolver;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const org = await database.auth.createOrg("vault");
    orgId = org.id;
    userId = (await database.auth.createUser(org.id, { name: "ada", role: "member" })).id;
    otherUserId = (await database.auth.createUser(org.id, { name: "bob", role: "member" })).id;
    store = new PostgresSecretStore(database.pool, createSecretKeyring(key));
    resolver = new PostgresSecretResolver(database.pool, createSecretKeyring(key));
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it("stores only ciphertext: no row, column or encoding of it holds the plaintext", async () => {
    const metadata = await store.setSecret({ kind: "org", orgId }, "GITHUB_TOKEN", SECRET);
    expect(metadata).toMatchObject({ name: "GITHUB_TOKEN", scope: "org", keyId: key.id, version: 1 });
    expect(JSON.stringify(metadata)).not.toContain(SECRET);

    const { rows } = await database.pool.query(
      "SELECT row_to_json(secrets)::text AS everything, ciphertext, nonce, auth_tag FROM secrets WHERE org_id = $1",
      [orgId],
    );
    expect(rows).toHaveLength(1);
    const row = rows[0];
    const plainBytes = Buffer.from(SECRET, "utf8");
    expect(row.everything).not.toContain(SECRET);
    expect(row.everything).not.toContain(plainBytes.toString("hex"));
    expect(row.everything).not.toContain(plainBytes.toString("base64").slice(0, 20));
    expect(Buffer.compare(row.ciphertext, plainBytes)).not.toBe(0);
    expect(row.ciphertext.includes(plainBytes.subarray(0, 8))).toBe(false);
    expect(row.nonce).toHaveLength(12);
    expect(row.auth_tag).toHaveLength(16);
    await expect(resolver.resolveSecret({ orgId }, "GITHUB_TOKEN")).resolves.toBe(SECRET);
  });

  it("uses a fresh nonce per write and bumps the version on overwrite", async () => {
    const scope = { kind: "org", orgId } as const;
    await store.setSecret(scope, "NONCE_CHECK", "same value");
    const first = await database.pool.query(
      "SELECT nonce, ciphertext FROM secrets WHERE name = 'NONCE_CHECK'",
    );
    const second = await store.setSecret(scope, "NONCE_CHECK", "same value");
    const after = await database.pool.query(
      "SELECT nonce, ciphertext FROM secrets WHERE name = 'NONCE_CHECK'",
    );
    expect(second.version).toBe(2);
    expect(after.rows).toHaveLength(1);
    expect(Buffer.compare(after.rows[0].nonce, first.rows[0].nonce)).not.toBe(0);
    expect(Buffer.compare(after.rows[0].ciphertext, first.rows[0].ciphertext)).not.toBe(0);
  });

  it("lists names and metadata per scope, never values, and resolves user before org", async () => {
    await store.setSecret({ kind: "org", orgId }, "NPM_TOKEN", "org-npm-value-1234");
    await store.setSecret({ kind: "user", orgId, userId }, "NPM_TOKEN", "ada-npm-value-5678");
    const orgList = await store.listSecrets({ kind: "org", orgId });
    const userList = await store.listSecrets({ kind: "user", orgId, userId });
    expect(orgList.map((secret) => secret.name)).toEqual(["GITHUB_TOKEN", "NONCE_CHECK", "NPM_TOKEN"]);
    expect(userList.map((secret) => [secret.name, secret.scope])).toEqual([["NPM_TOKEN", "user"]]);
    expect(JSON.stringify([orgList, userList])).not.toMatch(/npm-value|S3cret/);

    await expect(resolver.resolveSecret({ orgId, userId }, "NPM_TOKEN")).resolves.toBe("ada-npm-value-5678");
    await expect(resolver.resolveSecret({ orgId, userId: otherUserId }, "NPM_TOKEN")).resolves.toBe(
      "org-npm-value-1234",
    );
    await expect(resolver.resolveSecret({ orgId }, "NPM_TOKEN")).resolves.toBe("org-npm-value-1234");
    const all = await resolver.resolveAllSecrets({ orgId, userId });
    expect(all.get("NPM_TOKEN")).toBe("ada-npm-value-5678");
    expect(all.get("GITHUB_TOKEN")).toBe(SECRET);
  });

  it("keeps orgs apart and deletes only the named secret of the scope", async () => {
    const other = await database.auth.createOrg("vault-other");
    await expect(resolver.resolveSecret({ orgId: other.id }, "GITHUB_TOKEN")).resolves.toBeNull();
    await expect(store.listSecrets({ kind: "org", orgId: other.id })).resolves.toEqual([]);
    await expect(store.deleteSecret({ kind: "org", orgId: other.id }, "GITHUB_TOKEN")).resolves.toBe(false);

    await store.setSecret({ kind: "user", orgId, userId }, "TEMP", "temp-value-user");
    await store.setSecret({ kind: "org", orgId }, "TEMP", "temp-value-org");
    await expect(store.deleteSecret({ kind: "user", orgId, userId }, "TEMP")).resolves.toBe(true);
    await expect(resolver.resolveSecret({ orgId, userId }, "TEMP")).resolves.toBe("temp-value-org");
  });

  it("fails closed with a wrong key, an unknown key id or a tampered or moved row", async () => {
    const wrong = new PostgresSecretResolver(database.pool, createSecretKeyring(randomKey()));
    const failure = await wrong.resolveSecret({ orgId }, "GITHUB_TOKEN").catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "secret_key_unknown" });
    expect(String((failure as Error).message)).not.toContain(SECRET);

    // Same key id, different bytes: authentication fails rather than returning garbage.
    const impostor = { id: key.id, key: randomBytes(32) };
    const forged = new PostgresSecretResolver(database.pool, createSecretKeyring(impostor));
    await expect(forged.resolveSecret({ orgId }, "GITHUB_TOKEN")).rejects.toMatchObject({
      code: "secret_undecryptable",
    });

    await store.setSecret({ kind: "org", orgId }, "TAMPERED", "tamper-me-please");
    await database.pool.query(
      "UPDATE secrets SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE name = 'TAMPERED'",
    );
    await expect(resolver.resolveSecret({ orgId }, "TAMPERED")).rejects.toMatchObject({
      code: "secret_undecryptable",
    });

    // A ciphertext copied under another name does not decrypt: the name is bound as associated data.
    await store.setSecret({ kind: "org", orgId }, "DECOY", "decoy-value");
    await database.pool.query(
      `UPDATE secrets SET (ciphertext, nonce, auth_tag) = (SELECT ciphertext, nonce, auth_tag FROM secrets
         WHERE name = 'GITHUB_TOKEN' AND org_id = $1) WHERE name = 'DECOY' AND org_id = $1`,
      [orgId],
    );
    await expect(resolver.resolveSecret({ orgId }, "DECOY")).rejects.toMatchObject({
      code: "secret_undecryptable",
    });
  });

  it("rotates: old rows stay readable with the old key in the ring and re-encrypt to the new key", async () => {
    const org = await database.auth.createOrg("vault-rotate");
    const oldStore = new PostgresSecretStore(database.pool, createSecretKeyring(key));
    await oldStore.setSecret({ kind: "org", orgId: org.id }, "ROTATE_ME", "rotating-value");
    const next = randomKey();
    const ring = createSecretKeyring(next, [key]);
    const rotated = new PostgresSecretStore(database.pool, ring);
    const rotatedResolver = new PostgresSecretResolver(database.pool, ring);
    await expect(rotatedResolver.resolveSecret({ orgId: org.id }, "ROTATE_ME")).resolves.toBe(
      "rotating-value",
    );
    // Earlier tests left two tampered rows in another org: they are counted, not fatal.
    const result = await rotated.reencryptAll();
    expect(result.undecryptable).toBe(2);
    expect(result.reencrypted).toBeGreaterThanOrEqual(6);
    const [listed] = await rotated.listSecrets({ kind: "org", orgId: org.id });
    expect(listed?.keyId).toBe(next.id);
    const newOnly = new PostgresSecretResolver(database.pool, createSecretKeyring(next));
    await expect(newOnly.resolveSecret({ orgId: org.id }, "ROTATE_ME")).resolves.toBe("rotating-value");
  });

  it("rejects bad names and oversized values without echoing the value", async () => {
    await expect(store.setSecret({ kind: "org", orgId }, "1BAD", "x")).rejects.toMatchObject({
      code: "invalid_secret_name",
    });
    await expect(store.setSecret({ kind: "org", orgId }, "A-B", "x")).rejects.toMatchObject({
      code: "invalid_secret_name",
    });
    const huge = `${SECRET}${"x".repeat(70_000)}`;
    const error = await store
      .setSecret({ kind: "org", orgId }, "HUGE", huge)
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "secret_too_large" });
    expect((error as Error).message).not.toContain(SECRET);
  });
});

describe("loadMasterKey", () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "outrig-master-key-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("creates a 0600 key file on first use and reads the same key afterwards", async () => {
    const keyFile = join(directory, "master.key");
    const [first, concurrent] = await Promise.all([loadMasterKey({ keyFile }), loadMasterKey({ keyFile })]);
    expect(first.key).toHaveLength(32);
    expect(concurrent.id).toBe(first.id);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const again = await loadMasterKey({ keyFile });
    expect(again.key.equals(first.key)).toBe(true);
    expect((await readFile(keyFile, "utf8")).trim()).toBe(first.key.toString("base64"));
  });

  it("prefers masterKey, and rejects malformed keys and key files others can read", async () => {
    const value = randomBytes(32).toString("base64");
    const fromConfig = await loadMasterKey({ masterKey: value, keyFile: join(directory, "unused.key") });
    expect(fromConfig.key.toString("base64")).toBe(value);
    await expect(loadMasterKey({ masterKey: randomBytes(16).toString("base64") })).rejects.toMatchObject({
      code: "master_key_invalid",
    });
    await expect(loadMasterKey({ masterKey: "not base64 at all!" })).rejects.toMatchObject({
      code: "master_key_invalid",
    });
    await expect(loadMasterKey({})).rejects.toMatchObject({ code: "master_key_missing" });
    const loose = join(directory, "loose.key");
    await writeFile(loose, `${value}\n`);
    await chmod(loose, 0o644);
    await expect(loadMasterKey({ keyFile: loose })).rejects.toMatchObject({
      code: "master_key_file_insecure",
    });
  });
});
