/**
 * `outrig files ls|cat|put|rm|history <path>`: Outrig's versioned file store (`/v1/file_store`), skills
 * (read-only) and memories, scoped by the caller's key. Uploads of the Files API are `/v1/files`.
 */
import fs from "node:fs/promises";

export interface FilesCommandOptions {
  readonly server: string;
  readonly apiKey: string;
  readonly out: (text: string | Uint8Array) => void;
}

export const FILES_USAGE =
  "usage: outrig files ls|cat|history|rm <path> | outrig files put <path> <local file or ->";

/** Runs one files subcommand; throws with the server's error code and message on failure. */
export async function filesCommand(argv: readonly string[], options: FilesCommandOptions): Promise<void> {
  const [subcommand, target, source] = argv;
  if (!subcommand || !target) throw new Error(FILES_USAGE);
  const query = (path: string) => `path=${encodeURIComponent(path)}`;
  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${options.server}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) {
      const error = (await response.json().catch(() => ({}))) as {
        error?: { code?: string; message?: string };
      };
      throw new Error(`${error.error?.code ?? response.status}: ${error.error?.message ?? "request failed"}`);
    }
    return response;
  };
  switch (subcommand) {
    case "ls": {
      const { entries } = (await (
        await call("GET", `/v1/file_store/list?${query(target)}&recursive=true`)
      ).json()) as {
        entries: { path: string; kind?: string }[];
      };
      for (const entry of entries) options.out(`${entry.path}\n`);
      return;
    }
    case "cat":
      options.out(
        new Uint8Array(await (await call("GET", `/v1/file_store/content?${query(target)}`)).arrayBuffer()),
      );
      return;
    case "history": {
      const body = (await (await call("GET", `/v1/file_store/history?${query(target)}`)).json()) as {
        versions?: unknown[];
      };
      for (const version of body.versions ?? []) options.out(`${JSON.stringify(version)}\n`);
      return;
    }
    case "rm":
      await call("DELETE", `/v1/file_store/content?${query(target)}`);
      return;
    case "put": {
      if (!source) throw new Error(FILES_USAGE);
      const content = source === "-" ? await readStdin() : await fs.readFile(source);
      await call("PUT", "/v1/file_store/content", {
        path: target,
        content: content.toString("base64"),
        encoding: "base64",
      });
      return;
    }
    default:
      throw new Error(FILES_USAGE);
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
