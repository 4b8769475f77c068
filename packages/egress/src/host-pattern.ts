/**
 * Host allowlist patterns: an exact name (`api.github.com`) or a suffix wildcard (`*.npmjs.org`),
 * each with an optional port (`git.corp:8443`). A pattern without a port means the web's ports only,
 * 443 and 80: an allowed name never opens the other services of the host it names.
 */

/** Ports a pattern without `:port` allows. */
export const DEFAULT_ALLOWED_PORTS: readonly number[] = [443, 80];

/** Lower-cases and drops one trailing dot and IPv6 brackets; returns null for a syntactically bad host. */
export function normalizeHost(host: string): string | null {
  let value = host.trim().toLowerCase();
  if (value.startsWith("[") && value.endsWith("]")) value = value.slice(1, -1);
  if (value.endsWith(".")) value = value.slice(0, -1);
  if (value.length === 0 || value.length > 253) return null;
  if (/^[0-9a-f:.]+$/.test(value) && value.includes(":")) return value;
  if (!/^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(value)) return null;
  return value;
}

/** Splits `name[:port]`; the port is null when the pattern names none. */
export function splitHostPattern(pattern: string): { readonly name: string; readonly port: number | null } {
  const value = pattern.trim().toLowerCase();
  const match = /^([^:[\]]+):(\d{1,5})$/.exec(value);
  if (match?.[1] && match[2]) return { name: match[1], port: Number(match[2]) };
  return { name: value, port: null };
}

/**
 * True when `host` (normalized) on `port` matches `pattern`. `*.example.com` matches `a.example.com`
 * and `a.b.example.com` but not `example.com` itself; list both to allow both. Without a port the
 * pattern matches ports 443 and 80 only; `name:port` matches that port only. A pattern with a colon
 * that is not `name:port` (an IPv6 literal, a bad port) matches nothing.
 */
export function matchesHostPattern(pattern: string, host: string, port: number): boolean {
  const { name, port: patternPort } = splitHostPattern(pattern);
  if (name.includes(":")) return false;
  if (patternPort === null ? !DEFAULT_ALLOWED_PORTS.includes(port) : patternPort !== port) return false;
  if (name.startsWith("*.")) {
    const suffix = name.slice(1);
    return host.length > suffix.length && host.endsWith(suffix);
  }
  return normalizeHost(name) === host;
}

export function isHostAllowed(patterns: readonly string[], host: string, port: number): boolean {
  return patterns.some((pattern) => matchesHostPattern(pattern, host, port));
}
