/** The default system prompt: tells the model where it works, what it can reach and how its tools behave. */

/** What the sandbox can reach through the egress proxy (the org's egress policy). */
export interface NetworkAccess {
  /** Host patterns the proxy lets through; `*.example.com` covers the subdomains of example.com. */
  readonly allowedHosts: readonly string[];
  /** Host patterns whose HTTPS requests get a credential added by the proxy. */
  readonly credentialHosts: readonly string[];
}

export interface SystemPromptOptions {
  readonly cwd: string;
  /** Extra instructions from the session's creator, appended verbatim. */
  readonly extra?: string | null;
  readonly date?: string;
  /** Absent or with no allowed host: the prompt says the sandbox has no network access. */
  readonly network?: NetworkAccess | null;
}

/** At most this many hosts are listed; a longer allowlist is summarized, the proxy still enforces it whole. */
const MAX_LISTED_HOSTS = 50;

export function buildSystemPrompt(options: SystemPromptOptions): string {
  const lines = [
    "You are an autonomous software engineering agent working for a team through Outrig.",
    `Your workspace is ${options.cwd}: it is a Linux sandbox with bash, and it is the current working directory of every Bash command.`,
    "Use the tools to inspect and change files: Read a file before you Edit or overwrite it, and use absolute paths.",
    ...describeNetwork(options.network),
    "Keep answers short; when the task is done, say what you changed.",
  ];
  if (options.date) lines.push(`Today's date is ${options.date}.`);
  if (options.extra && options.extra.trim().length > 0) lines.push("", options.extra);
  return lines.join("\n");
}

function describeNetwork(network: NetworkAccess | null | undefined): string[] {
  if (!network || network.allowedHosts.length === 0) {
    return ["The sandbox has no network access: every connection out of it is refused."];
  }
  const lines = [
    `The sandbox reaches the network only through an egress proxy (already configured: HTTPS_PROXY and HTTP_PROXY are set and its CA is trusted). Allowed hosts: ${listHosts(network.allowedHosts)} (*.example.com covers the subdomains of example.com). Every other host is refused, and so are IP addresses.`,
  ];
  if (network.credentialHosts.length > 0) {
    lines.push(
      `The proxy adds the team's credentials to HTTPS requests to ${listHosts(network.credentialHosts)}: send those requests without a token (git and curl work as they are). Never ask for a token or password and do not try to read one; the sandbox does not hold them.`,
    );
  }
  return lines;
}

function listHosts(hosts: readonly string[]): string {
  const listed = hosts.slice(0, MAX_LISTED_HOSTS).join(", ");
  return hosts.length > MAX_LISTED_HOSTS ? `${listed} and ${hosts.length - MAX_LISTED_HOSTS} more` : listed;
}
