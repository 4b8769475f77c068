/**
 * `outrig secrets set NAME [--user]`, `ls`, `rm NAME [--user]`. A value is read from standard input,
 * or typed at a prompt without echo on a terminal; never from the command line, where `ps` and shell
 * history would keep it.
 */
import { parseArgs } from "node:util";
import { type ApiSettings, apiCall, readAll } from "./api-call.js";

export const SECRETS_USAGE =
  "usage: outrig secrets set NAME [--user]   (value from stdin, or a prompt without echo)\n" +
  "       outrig secrets ls\n" +
  "       outrig secrets rm NAME [--user]";

export interface SecretsCommandOptions extends ApiSettings {
  readonly stdin: NodeJS.ReadStream;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export async function secretsCommand(argv: readonly string[], options: SecretsCommandOptions): Promise<void> {
  const [subcommand, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { user: { type: "boolean", default: false } },
    allowPositionals: true,
    strict: true,
  });
  const scope = values.user ? "user" : "org";
  const name = positionals[0];
  switch (subcommand) {
    case "set": {
      if (!name || positionals.length !== 1) throw new Error(SECRETS_USAGE);
      const value = options.stdin.isTTY
        ? await promptHidden(`value for ${name}: `, options.stdin, options.err)
        : stripOneNewline((await readAll(options.stdin)).toString("utf8"));
      if (value === "") throw new Error("the secret value is empty");
      const response = await apiCall(options, "PUT", `/v1/secrets/${encodeURIComponent(name)}`, {
        value,
        scope,
      });
      const stored = (await response.json()) as { name: string; scope: string; version: number };
      options.out(`set ${stored.scope} secret ${stored.name} (version ${stored.version})\n`);
      return;
    }
    case "ls": {
      if (positionals.length !== 0) throw new Error(SECRETS_USAGE);
      const { secrets } = (await (await apiCall(options, "GET", "/v1/secrets")).json()) as {
        secrets: { name: string; scope: string; version: number; updatedAt: string }[];
      };
      for (const secret of secrets) {
        options.out(`${secret.name}\t${secret.scope}\tv${secret.version}\t${secret.updatedAt}\n`);
      }
      return;
    }
    case "rm": {
      if (!name || positionals.length !== 1) throw new Error(SECRETS_USAGE);
      await apiCall(options, "DELETE", `/v1/secrets/${encodeURIComponent(name)}?scope=${scope}`);
      options.out(`removed ${scope} secret ${name}\n`);
      return;
    }
    default:
      throw new Error(SECRETS_USAGE);
  }
}

/** `printf 'x\n' | outrig secrets set` stores `x`: one trailing newline is the shell's, not the value's. */
function stripOneNewline(value: string): string {
  return value.endsWith("\r\n") ? value.slice(0, -2) : value.endsWith("\n") ? value.slice(0, -1) : value;
}

/** Reads one line from a terminal in raw mode, echoing nothing. */
function promptHidden(
  prompt: string,
  stdin: NodeJS.ReadStream,
  err: (text: string) => void,
): Promise<string> {
  err(prompt);
  return new Promise((resolve, reject) => {
    let value = "";
    stdin.setRawMode(true);
    stdin.setEncoding("utf8");
    const finish = (error?: Error) => {
      stdin.setRawMode(false);
      stdin.off("data", onData);
      stdin.pause();
      err("\n");
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const character of chunk) {
        if (character === "\r" || character === "\n" || character === "\u0004") return finish();
        if (character === "\u0003") return finish(new Error("cancelled"));
        if (character === "\u007f" || character === "\b") value = value.slice(0, -1);
        else value += character;
      }
    };
    stdin.on("data", onData);
    stdin.resume();
  });
}
