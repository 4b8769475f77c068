/** `outrig keys create`: an operator command that talks to the database directly (it needs no key to make one). */
import { resolveDatabase } from "@outrig/storage";

export interface KeysCreateOptions {
  readonly home: string;
  readonly databaseUrl: string | undefined;
  readonly org: string;
  readonly user: string;
  readonly name: string;
}

/** Creates the org and user when missing and returns a new plaintext API key for that user. */
export async function keysCreateCommand(options: KeysCreateOptions): Promise<string> {
  const database = await resolveDatabase({
    databaseUrl: options.databaseUrl,
    outrigHome: options.home,
    keepAdoptedPostgres: true,
  });
  try {
    const org = await database.auth.ensureOrg(options.org);
    const user = await database.auth.ensureUser(org.id, { name: options.user, role: "admin" });
    const created = await database.auth.createApiKey(org.id, user.id, options.name);
    return created.key;
  } finally {
    await database.close();
  }
}
