/**
 * `outrig vaults …`: vaults and their credentials over `/v1/vaults`. A value is read from standard
 * input, or typed at a prompt without echo on a terminal; never from the command line, where `ps`
 * and shell history would keep it. No command prints a value: the server never returns one.
 */
import { parseArgs } from "node:util";
import { type ApiSettings, apiCall, readAll } from "./api-call.js";

export const VAULTS_USAGE = `usage: outrig vaults ls [--archived]
       outrig vaults new NAME [--org]                  a vault of your own (--org: the org's; admins)
       outrig vaults archive|rm VAULT_ID
       outrig vaults creds VAULT_ID [--archived]       its credentials (never their values)
       outrig vaults set VAULT_ID NAME [--host H]...   create or rotate an environment_variable
                                                       credential: the sandbox gets NAME holding a
                                                       placeholder, egress substitutes the value on
                                                       the hosts (every allowed host without --host)
       outrig vaults bearer VAULT_ID MCP_SERVER_URL    create or rotate a static bearer token for an
                                                       MCP server
       outrig vaults archive-cred|rm-cred VAULT_ID CREDENTIAL_ID
The value of set and bearer comes from stdin, or a prompt without echo on a terminal.`;

export interface VaultsCommandOptions extends ApiSettings {
  readonly stdin: NodeJS.ReadStream;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

interface Vault {
  id: string;
  display_name: string;
  scope: string;
  archived_at: string | null;
}

interface Credential {
  id: string;
  archived_at: string | null;
  updated_at: string;
  auth: { type: string; secret_name?: string; mcp_server_url?: string };
}

export async function vaultsCommand(argv: readonly string[], options: VaultsCommandOptions): Promise<void> {
  const [subcommand, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      org: { type: "boolean", default: false },
      archived: { type: "boolean", default: false },
      host: { type: "string", multiple: true },
    },
    allowPositionals: true,
    strict: true,
  });
  const argumentsOf = (count: number) => {
    if (positionals.length !== count) throw new Error(VAULTS_USAGE);
    return positionals.map((each) => encodeURIComponent(each));
  };
  switch (subcommand) {
    case "ls": {
      argumentsOf(0);
      for (const vault of await listAll<Vault>(options, "/v1/vaults", values.archived)) {
        options.out(
          `${vault.id}\t${vault.scope}\t${vault.display_name}${vault.archived_at ? "\tarchived" : ""}\n`,
        );
      }
      return;
    }
    case "new": {
      argumentsOf(1);
      const response = await apiCall(options, "POST", "/v1/vaults", {
        display_name: positionals[0],
        scope: values.org ? "org" : "user",
      });
      const vault = (await response.json()) as Vault;
      options.out(`created ${vault.scope} vault ${vault.id} (${vault.display_name})\n`);
      return;
    }
    case "archive":
    case "rm": {
      const [vaultId] = argumentsOf(1);
      if (subcommand === "rm") await apiCall(options, "DELETE", `/v1/vaults/${vaultId}`);
      else await apiCall(options, "POST", `/v1/vaults/${vaultId}/archive`);
      options.out(`${subcommand === "rm" ? "deleted" : "archived"} vault ${positionals[0]}\n`);
      return;
    }
    case "creds": {
      const [vaultId] = argumentsOf(1);
      for (const credential of await listAll<Credential>(
        options,
        `/v1/vaults/${vaultId}/credentials`,
        values.archived,
      )) {
        const target = credential.auth.secret_name ?? credential.auth.mcp_server_url ?? "";
        options.out(
          `${credential.id}\t${credential.auth.type}\t${target}\t${credential.updated_at}${credential.archived_at ? "\tarchived" : ""}\n`,
        );
      }
      return;
    }
    case "set":
    case "bearer": {
      const [vaultId] = argumentsOf(2);
      const target = positionals[1] ?? "";
      if (subcommand === "bearer" && values.host) throw new Error(VAULTS_USAGE);
      const value = options.stdin.isTTY
        ? await promptHidden(`value for ${target}: `, options.stdin, options.err)
        : stripOneNewline((await readAll(options.stdin)).toString("utf8"));
      if (value === "") throw new Error("the value is empty");
      const existing = (await listAll<Credential>(options, `/v1/vaults/${vaultId}/credentials`, false)).find(
        (credential) =>
          subcommand === "set"
            ? credential.auth.type === "environment_variable" && credential.auth.secret_name === target
            : credential.auth.type === "static_bearer" && credential.auth.mcp_server_url === target,
      );
      const networking = values.host
        ? { type: "limited", allowed_hosts: values.host }
        : { type: "unrestricted" };
      const auth =
        subcommand === "set"
          ? existing
            ? { type: "environment_variable", secret_value: value, ...(values.host ? { networking } : {}) }
            : { type: "environment_variable", secret_name: target, secret_value: value, networking }
          : existing
            ? { type: "static_bearer", token: value }
            : { type: "static_bearer", token: value, mcp_server_url: target };
      const response = await apiCall(
        options,
        "POST",
        existing ? `/v1/vaults/${vaultId}/credentials/${existing.id}` : `/v1/vaults/${vaultId}/credentials`,
        { auth },
      );
      const credential = (await response.json()) as Credential;
      options.out(
        `${existing ? "rotated" : "created"} ${credential.auth.type} ${target} as ${credential.id}\n`,
      );
      return;
    }
    case "archive-cred":
    case "rm-cred": {
      const [vaultId, credentialId] = argumentsOf(2);
      const route = `/v1/vaults/${vaultId}/credentials/${credentialId}`;
      if (subcommand === "rm-cred") await apiCall(options, "DELETE", route);
      else await apiCall(options, "POST", `${route}/archive`);
      options.out(`${subcommand === "rm-cred" ? "deleted" : "archived"} credential ${positionals[1]}\n`);
      return;
    }
    default:
      throw new Error(VAULTS_USAGE);
  }
}

/** Every item of a cursor-paginated list. */
async function listAll<T>(options: ApiSettings, route: string, includeArchived: boolean): Promise<T[]> {
  const items: T[] = [];
  let page: string | null = null;
  do {
    const query = new URLSearchParams({ limit: "100" });
    if (includeArchived) query.set("include_archived", "true");
    if (page) query.set("page", page);
    const body = (await (await apiCall(options, "GET", `${route}?${query}`)).json()) as {
      data: T[];
      next_page: string | null;
    };
    items.push(...body.data);
    page = body.next_page;
  } while (page);
  return items;
}

/** `printf 'x\n' | outrig vaults set` stores `x`: one trailing newline is the shell's, not the value's. */
function stripOneNewline(value: string): string {
  return value.endsWith("\r\n") ? value.slice(0, -2) : value.endsWith("\n") ? value.slice(0, -1) : value;
}

/** Reads one line from a terminal in raw mode, echoing nothing. */
function promptHidden(
  prompt: string,
  stdin: NodeJS.ReadStream,
  err: (text: string) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = "";
    // Echo goes off before the prompt shows: what is typed (or pasted) at once is never echoed.
    stdin.setRawMode(true);
    stdin.setEncoding("utf8");
    err(prompt);
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
