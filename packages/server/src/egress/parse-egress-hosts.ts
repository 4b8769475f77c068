/** `OUTRIG_EGRESS_HOSTS=git.corp=10.0.0.5,other=127.0.0.1`: internal hosts the operator pins for egress. */
import { isIP } from "node:net";

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/**
 * Parses `name=address` pairs separated by commas (a name may repeat for several addresses). Throws
 * an Error saying which entry is wrong. Pinned names skip DNS and the address policy, so only an
 * operator sets them; an org's allowlist must still list the name.
 */
export function parseEgressHosts(value: string | undefined): ReadonlyMap<string, readonly string[]> {
  const hosts = new Map<string, string[]>();
  if (value === undefined || value.trim() === "") return hosts;
  for (const entry of value.split(",")) {
    const trimmed = entry.trim();
    if (trimmed === "") continue;
    const separator = trimmed.indexOf("=");
    if (separator <= 0) throw new Error(`"${trimmed}" is not name=address`);
    const name = trimmed.slice(0, separator).trim().toLowerCase();
    const address = trimmed.slice(separator + 1).trim();
    if (!HOST_NAME.test(name) || name.length > 253 || isIP(name) !== 0) {
      throw new Error(`"${name}" is not a host name`);
    }
    if (isIP(address) === 0) throw new Error(`"${address}" (for ${name}) is not an IP address`);
    hosts.set(name, [...(hosts.get(name) ?? []), address]);
  }
  return hosts;
}
