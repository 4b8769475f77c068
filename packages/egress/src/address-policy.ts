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

const blocked = new BlockList();
const reasons: { list: BlockList; reason: string }[] = [];
for (const [network, prefix, reason] of BLOCKED_V4) {
  blocked.addSubnet(network, prefix, "ipv4");
  const single = new BlockList();
  single.addSubnet(network, prefix, "ipv4");
  reasons.push({ list: single, reason });
}
for (const [network, prefix, reason] of BLOCKED_V6) {
  blocked.addSubnet(network, prefix, "ipv6");
  const single = new BlockList();
  single.addSubnet(network, prefix, "ipv6");
  reasons.push({ list: single, reason });
}
for (const address of METADATA_V4) {
  blocked.addAddress(address, "ipv4");
  const single = new BlockList();
  single.addAddress(address, "ipv4");
  reasons.push({ list: single, reason: "cloud metadata" });
}

/** The default policy: only public unicast addresses. A string that is not an IP is refused. */
export const publicAddressesOnly: AddressPolicy = (address) => {
  const family = isIP(address);
  if (family === 0) return "not an IP address";
  const type = family === 4 ? "ipv4" : "ipv6";
  if (!blocked.check(address, type)) return null;
  return reasons.find((entry) => entry.list.check(address, type))?.reason ?? "not public";
};

/** For tests whose upstreams live on loopback. Never use it in a deployment. */
export const anyAddress: AddressPolicy = () => null;
