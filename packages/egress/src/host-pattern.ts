/** Host allowlist patterns: an exact name (`api.github.com`) or a suffix wildcard (`*.npmjs.org`). */

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

/**
 * True when `host` (normalized) matches `pattern`. `*.example.com` matches `a.example.com` and
 * `a.b.example.com` but not `example.com` itself; list both to allow both.
 */
export function matchesHostPattern(pattern: string, host: string): boolean {
  const normalizedPattern = pattern.trim().toLowerCase();
  if (normalizedPattern.startsWith("*.")) {
    const suffix = normalizedPattern.slice(1);
    return host.length > suffix.length && host.endsWith(suffix);
  }
  return normalizeHost(normalizedPattern) === host;
}

export function isHostAllowed(patterns: readonly string[], host: string): boolean {
  return patterns.some((pattern) => matchesHostPattern(pattern, host));
}
