/** `host:port` as sent in a CONNECT request line. */
import { normalizeHost } from "./host-pattern.js";

/** Null for anything but a valid host (name, IPv4 or [IPv6]) and a port in 1..65535. */
export function parseAuthority(authority: string): { host: string; port: number } | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s]+):(\d{1,5})$/.exec(authority);
  if (!match?.[1] || !match[2]) return null;
  const host = normalizeHost(match[1]);
  const port = Number(match[2]);
  if (!host || port < 1 || port > 65535) return null;
  return { host, port };
}

export function formatAuthority(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** A `Host` header (`name`, `name:port`, `[v6]:port`) with `defaultPort` when it names none; null when malformed. */
export function parseHostHeader(value: string, defaultPort: number): { host: string; port: number } | null {
  const trimmed = value.trim();
  const hasPort = /:\d{1,5}$/.test(trimmed) && !/^[^[]*:.*:/.test(trimmed);
  return parseAuthority(hasPort ? trimmed : `${trimmed}:${defaultPort}`);
}
