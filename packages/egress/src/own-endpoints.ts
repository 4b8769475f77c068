/**
 * The server's own listeners (its HTTP API): egress never connects to them, whatever the allowlist
 * or the operator's pinned hosts say, so an allowed name that resolves (or is pinned) to the server's
 * address cannot reach Outrig's API from inside a sandbox.
 */
import { isIP } from "node:net";
import os from "node:os";

/** An address and port the server listens on; `0.0.0.0` or `::` means every local address. */
export interface OwnEndpoint {
  readonly address: string;
  readonly port: number;
}

/** True when connecting to `address:port` would reach one of `endpoints`. */
export function isOwnEndpoint(endpoints: readonly OwnEndpoint[], address: string, port: number): boolean {
  const target = canonical(address);
  for (const endpoint of endpoints) {
    if (endpoint.port !== port) continue;
    const own = canonical(endpoint.address);
    if (own === target) return true;
    // A wildcard or loopback listener answers on every loopback address, and a wildcard one on every
    // address of this machine.
    if ((isUnspecified(own) || isLoopback(own)) && isLoopback(target)) return true;
    if (isUnspecified(own) && (isUnspecified(target) || localAddresses().has(target))) return true;
  }
  return false;
}

function canonical(address: string): string {
  let value = address.trim().toLowerCase();
  if (value.startsWith("[") && value.endsWith("]")) value = value.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(value);
  if (mapped?.[1]) return mapped[1];
  if (value === "localhost") return "127.0.0.1";
  return value;
}

function isUnspecified(address: string): boolean {
  return address === "0.0.0.0" || address === "::" || /^0+(:0+){7}$/.test(address);
}

function isLoopback(address: string): boolean {
  if (isIP(address) === 4) return address.startsWith("127.");
  return address === "::1" || /^0+(:0+){6}:0*1$/.test(address);
}

function localAddresses(): Set<string> {
  const addresses = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const entry of list ?? []) addresses.add(canonical(entry.address.split("%")[0] ?? ""));
  }
  return addresses;
}
