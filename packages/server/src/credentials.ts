/** The CLI's saved credentials (`<OUTRIG_HOME>/credentials.json`, mode 0600): where `outrig run` finds its key. */
import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

export const Credentials = z.object({ server: z.string(), apiKey: z.string() });
export type Credentials = z.infer<typeof Credentials>;

export function credentialsPath(home: string): string {
  return path.join(home, "credentials.json");
}

export async function saveCredentials(home: string, credentials: Credentials): Promise<string> {
  const file = credentialsPath(home);
  await fs.mkdir(home, { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(temporary, file);
  return file;
}

/** Resolves null when there are no saved credentials; throws when the file is corrupt. */
export async function loadCredentials(home: string): Promise<Credentials | null> {
  let text: string;
  try {
    text = await fs.readFile(credentialsPath(home), "utf8");
  } catch {
    return null;
  }
  const parsed = Credentials.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${credentialsPath(home)} is not a valid credentials file`);
  return parsed.data;
}
