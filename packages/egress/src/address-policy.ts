/**
 * Which resolved IP addresses egress may connect to. The default refuses every non-public range
 * (loopback, private, link-local, CGNAT, cloud metadata, multicast, reserved, v4-in-v6 forms), so an
 * allowlisted name that resolves to an internal address is still refused (SSRF).
 */
import { BlockList, isIP } from "node:net";

/** Returns null when the address may be reached, else a short reason. */
export type AddressPolicy = (address: string) => string | null;

const BLOCKED_V4: readonly [string, number, string][] = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "carrier-grade NAT"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local (cloud metadata)"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "documentation"],
  ["192.88.99.0", 24, "6to4 relay"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];
const BLOCKED_V6: readonly [string, number, string][] = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["::ffff:0:0", 96, "IPv4-mapped"],
  ["64:ff9b::", 96, "NAT64"],
  ["64:ff9b:1::", 48, "NAT64"],
  ["100::", 64, "discard"],
  ["2001::", 32, "Teredo"],
  ["2001:db8::", 32, "documentation"],
  ["2002::", 16, "6to4"],
  ["fc00::", 7, "unique local (private)"],
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "site-local"],
  ["ff00::", 8, "multicast"],
];
/** Public addresses that still answer as a cloud metadata service. */
const METADATA_V4 = ["168.63.129.16"];

// Invariant: one list per family. Node's BlockList matches IPv4 queries against IPv4-mapped IPv6
// rules, so ::ffff:0:0/96 in a shared list would refuse every IPv4 address.
const ranges = {
  ipv4: [
    ...BLOCKED_V4,
    ...METADATA_V4.map((address): [string, number, string] => [address, 32, "cloud metadata"]),
  ],
  ipv6: BLOCKED_V6,
} as const;
const rules = {
  ipv4: ranges.ipv4.map(([network, prefix, reason]) => ({ list: subnet(network, prefix, "ipv4"), reason })),
  ipv6: ranges.ipv6.map(([network, prefix, reason]) => ({ list: subnet(network, prefix, "ipv6"), reason })),
};

/** The default policy: only public unicast addresses. A string that is not an IP is refused. */
export const publicAddressesOnly: AddressPolicy = (address) => {
  const family = isIP(address);
  if (family === 0) return "not an IP address";
  const type = family === 4 ? "ipv4" : "ipv6";
  return rules[type].find((rule) => rule.list.check(address, type))?.reason ?? null;
};

function subnet(network: string, prefix: number, type: "ipv4" | "ipv6"): BlockList {
  const list = new BlockList();
  list.addSubnet(network, prefix, type);
  return list;
}

/** For tests whose upstreams live on loopback. Never use it in a deployment. */
export const anyAddress: AddressPolicy = () => null;
