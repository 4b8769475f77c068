import { randomBytes, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { EgressPolicyBody } from "@outrig/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCredential, credentialApplies } from "../src/apply-credential.js";
import {
  CA_KEY_FILE,
  createCertificateAuthority,
  createFragmentScanner,
  createScanningTransform,
  createSecretScanner,
  isHostAllowed,
  isOwnEndpoint,
  loadCertificateAuthority,
  matchesHostPattern,
  normalizeHost,
  publicAddressesOnly,
  SecretInRequestError,
  writeCaBundle,
} from "../src/index.js";

describe("publicAddressesOnly", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "link-local (cloud metadata)"],
    ["168.63.129.16", "cloud metadata"],
    ["100.100.100.200", "carrier-grade NAT"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["::ffff:127.0.0.1", "IPv4-mapped"],
    ["::ffff:8.8.8.8", "IPv4-mapped"],
    ["64:ff9b::a9fe:a9fe", "NAT64"],
    ["fd00:ec2::254", "unique local (private)"],
    ["fe80::1", "link-local"],
    ["2002:7f00:1::", "6to4"],
    ["not-an-ip", "not an IP address"],
  ])("refuses %s (%s)", (address, reason) => {
    expect(publicAddressesOnly(address)).toBe(reason);
  });

  it.each(["8.8.8.8", "1.1.1.1", "140.82.112.3", "172.32.0.1", "2606:4700:4700::1111"])(
    "allows %s",
    (address) => {
      expect(publicAddressesOnly(address)).toBeNull();
    },
  );
});

describe("host patterns", () => {
  it("matches exact names and *.suffix wildcards, case- and trailing-dot-insensitively", () => {
    expect(matchesHostPattern("api.github.com", "api.github.com", 443)).toBe(true);
    expect(matchesHostPattern("API.GitHub.com.", "api.github.com", 443)).toBe(true);
    expect(matchesHostPattern("api.github.com", "github.com", 443)).toBe(false);
    expect(matchesHostPattern("*.npmjs.org", "registry.npmjs.org", 443)).toBe(true);
    expect(matchesHostPattern("*.npmjs.org", "a.b.npmjs.org", 443)).toBe(true);
    expect(matchesHostPattern("*.npmjs.org", "npmjs.org", 443)).toBe(false);
    expect(matchesHostPattern("*.npmjs.org", "evilnpmjs.org", 443)).toBe(false);
    expect(isHostAllowed([], "anything.com", 443)).toBe(false);
  });

  it("reads an entry without a port as 443 and 80 only, and host:port as that port only", () => {
    expect(matchesHostPattern("github.com", "github.com", 80)).toBe(true);
    expect(matchesHostPattern("github.com", "github.com", 22)).toBe(false);
    expect(matchesHostPattern("github.com", "github.com", 8443)).toBe(false);
    expect(matchesHostPattern("git.corp:8443", "git.corp", 8443)).toBe(true);
    expect(matchesHostPattern("git.corp:8443", "git.corp", 443)).toBe(false);
    expect(matchesHostPattern("*.corp:8443", "a.corp", 8443)).toBe(true);
    expect(matchesHostPattern("*.corp:8443", "a.corp", 443)).toBe(false);
    expect(matchesHostPattern("git.corp:bad", "git.corp", 443)).toBe(false);
  });

  it("normalizes hosts and rejects malformed ones", () => {
    expect(normalizeHost("Example.COM.")).toBe("example.com");
    expect(normalizeHost("[::1]")).toBe("::1");
    expect(normalizeHost("a..b")).toBeNull();
    expect(normalizeHost("evil.com/x")).toBeNull();
    expect(normalizeHost("")).toBeNull();
  });
});

describe("secret scanner", () => {
  const secret = "s3cr3t-Value+/With=Symbols";
  const scanner = createSecretScanner([{ label: "secret X", value: secret }]);

  it("finds the value plain, percent-encoded, hex and base64 at every alignment inside larger blobs", () => {
    const samples = [
      `before ${secret} after`,
      `q=${encodeURIComponent(secret)}&r=1`,
      Buffer.from(secret).toString("hex"),
      Buffer.from(`id:${secret}`).toString("hex").toUpperCase(),
    ];
    for (let prefix = 0; prefix < 6; prefix += 1) {
      for (const suffix of ["", "z", "zz"]) {
        const blob = Buffer.from(`${"p".repeat(prefix)}${secret}${suffix}`);
        samples.push(blob.toString("base64"), blob.toString("base64url"));
      }
    }
    for (const sample of samples) expect([sample, scanner.find(sample)]).toEqual([sample, "secret X"]);
  });

  it("ignores unrelated text, short values and near misses", () => {
    expect(scanner.find("a normal request body")).toBeNull();
    expect(scanner.find(secret.slice(0, -1))).toBeNull();
    const short = createSecretScanner([{ label: "pin", value: "1234" }]);
    expect(short.isEmpty).toBe(true);
    expect(short.find("1234")).toBeNull();
  });

  it("never forwards a byte of a value split across stream chunks", async () => {
    const payload = Buffer.from(`${"x".repeat(100)}${secret}${"y".repeat(100)}`);
    const chunks = Array.from({ length: payload.length }, (_, index) => payload.subarray(index, index + 1));
    const forwarded: Buffer[] = [];
    const failure = await pipeline(
      Readable.from(chunks),
      createScanningTransform(scanner),
      async (source) => {
        for await (const chunk of source) forwarded.push(chunk as Buffer);
      },
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SecretInRequestError);
    expect((failure as SecretInRequestError).label).toBe("secret X");
    const sent = Buffer.concat(forwarded).toString();
    expect(sent.length).toBeLessThan(100 + secret.length);
    expect(sent).not.toContain(secret.slice(0, 2));

    const clean: Buffer[] = [];
    await pipeline(
      Readable.from([Buffer.from("hello "), Buffer.from("world")]),
      createScanningTransform(scanner),
      async (source) => {
        for await (const chunk of source) clean.push(chunk as Buffer);
      },
    );
    expect(Buffer.concat(clean).toString()).toBe("hello world");
  });
});

describe("response transforms and fragments", () => {
  const value = "ghs_fragmentTestToken_0a1b2c3d4e5f";
  const reverse = (text: string) => [...text].reverse().join("");

  it.each([
    ["reversed", reverse(value)],
    ["base64 of the reversal", Buffer.from(reverse(value)).toString("base64")],
    ["reversed base64", reverse(Buffer.from(value).toString("base64"))],
    ["reversed hex", reverse(Buffer.from(value).toString("hex"))],
    ["every byte percent-encoded", Buffer.from(value).toString("hex").replace(/../g, "%$&")],
  ])("finds the value %s", (_name, encoded) => {
    expect(createSecretScanner([{ label: "secret X", value }]).find(`a ${encoded} b`)).toBe("secret X");
  });

  it("finds 12 characters of a value in any transform, ignoring case, also across chunks", async () => {
    const scanner = createFragmentScanner([{ label: "secret X", value }]);
    expect(scanner.find(`x=${value.slice(3, 15).toUpperCase()};`)).toBe("secret X");
    expect(scanner.find(reverse(value).slice(10, 22))).toBe("secret X");
    expect(scanner.find(Buffer.from(value).toString("base64").slice(4, 16))).toBe("secret X");
    expect(scanner.find(value.slice(0, 11))).toBeNull();
    const half = value.length / 2;
    const chunks = [
      Buffer.from(`${"z".repeat(100)}${value.slice(half - 6, half)}`),
      Buffer.from(value.slice(half)),
    ];
    const scanned = pipeline(
      Readable.from(chunks),
      createScanningTransform(scanner),
      async function* (source) {
        for await (const _chunk of source) yield "";
      },
    );
    await expect(scanned).rejects.toBeInstanceOf(SecretInRequestError);
  });

  it("does not match a few MiB of random text", () => {
    const scanner = createFragmentScanner([{ label: "secret X", value }]);
    expect(scanner.find(randomBytes(3 * 1024 * 1024).toString("base64"))).toBeNull();
    expect(scanner.find(randomBytes(1024 * 1024).toString("hex"))).toBeNull();
  });
});

describe("own endpoints", () => {
  it("counts loopback and this machine's addresses for a wildcard listener, on its port only", () => {
    const wildcard = [{ address: "0.0.0.0", port: 8787 }];
    expect(isOwnEndpoint(wildcard, "127.0.0.1", 8787)).toBe(true);
    expect(isOwnEndpoint(wildcard, "127.1.2.3", 8787)).toBe(true);
    expect(isOwnEndpoint(wildcard, "::ffff:127.0.0.1", 8787)).toBe(true);
    expect(isOwnEndpoint(wildcard, "::1", 8787)).toBe(true);
    expect(isOwnEndpoint(wildcard, "127.0.0.1", 8788)).toBe(false);
    expect(isOwnEndpoint(wildcard, "93.184.216.34", 8787)).toBe(false);
    expect(isOwnEndpoint([{ address: "10.0.0.5", port: 443 }], "10.0.0.5", 443)).toBe(true);
    expect(isOwnEndpoint([{ address: "10.0.0.5", port: 443 }], "10.0.0.6", 443)).toBe(false);
  });
});

describe("egress policy schema", () => {
  const parse = (allowedHosts: string[], credentials: unknown[] = []) =>
    EgressPolicyBody.safeParse({ allowedHosts, credentials });

  it("takes host:port entries (normalized) and isHeaderOnly credentials", () => {
    const parsed = parse(
      ["Git.Corp:08443", "*.corp.example:22", "github.com"],
      [{ host: "api.example.com:8443", secretName: "TOKEN", scheme: "bearer", isHeaderOnly: true }],
    );
    expect(parsed.success && parsed.data).toEqual({
      allowedHosts: ["git.corp:8443", "*.corp.example:22", "github.com"],
      credentials: [
        { host: "api.example.com:8443", secretName: "TOKEN", scheme: "bearer", isHeaderOnly: true },
      ],
    });
  });

  it.each([
    ["git.corp:0", "1-65535"],
    ["git.corp:70000", "1-65535"],
    ["10.0.0.5:80", "not an IP address"],
    ["[::1]:443", "not an IP address"],
    ["git.corp:", "not an IP address"],
  ])("refuses %s", (entry, message) => {
    const parsed = parse([entry]);
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain(message);
  });

  it("refuses a non-boolean isHeaderOnly", () => {
    expect(
      parse([], [{ host: "a.example", secretName: "T", scheme: "bearer", isHeaderOnly: "yes" }]).success,
    ).toBe(false);
  });
});

describe("certificate authority on disk", () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "outrig-egress-ca-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("is created once with a 0600 key, reloaded unchanged, and signs leaves the CA verifies", async () => {
    const caDirectory = join(directory, "ca");
    const first = await loadCertificateAuthority(caDirectory);
    expect((await stat(join(caDirectory, CA_KEY_FILE))).mode & 0o777).toBe(0o600);
    const again = await loadCertificateAuthority(caDirectory);
    expect(again.certificatePem).toBe(first.certificatePem);
    const ca = new X509Certificate(first.certificatePem);
    expect(ca.ca).toBe(true);
    for (const host of ["git.example.com", "10.0.0.7"]) {
      const leaf = new X509Certificate(again.issueLeaf(host).certificatePem);
      expect(leaf.checkIssued(ca)).toBe(true);
      expect(leaf.verify(ca.publicKey)).toBe(true);
      expect(leaf.checkHost("git.example.com") ?? leaf.checkIP("10.0.0.7")).toBeDefined();
    }
    expect(again.issueLeaf("git.example.com")).toBe(again.issueLeaf("git.example.com"));
  });

  it("encodes serial numbers so that OpenSSL loads every CA and leaf (no illegal DER padding)", () => {
    // A serial of 00 followed by a byte below 0x80 made OpenSSL (curl, Node) refuse ~1 in 8 certificates.
    for (let round = 0; round < 6; round += 1) {
      const ca = createCertificateAuthority();
      const root = new X509Certificate(ca.certificatePem);
      expect(root.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
      for (let index = 0; index < 20; index += 1) {
        const leaf = new X509Certificate(ca.issueLeaf(`host${index}.example`).certificatePem);
        expect(leaf.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
      }
    }
  });

  it("writes a bundle of the host roots followed by the CA", async () => {
    const ca = await loadCertificateAuthority(join(directory, "ca"));
    const hostBundle = join(directory, "host.pem");
    await writeFile(hostBundle, "-----BEGIN CERTIFICATE-----\nHOST\n-----END CERTIFICATE-----");
    const output = join(directory, "bundle.pem");
    await writeCaBundle(ca, output, hostBundle);
    expect(await readFile(output, "utf8")).toBe(
      `-----BEGIN CERTIFICATE-----\nHOST\n-----END CERTIFICATE-----\n${ca.certificatePem}`,
    );
  });

  it("refuses a CA key readable by others", async () => {
    const caDirectory = join(directory, "loose");
    await loadCertificateAuthority(caDirectory);
    const { chmod } = await import("node:fs/promises");
    await chmod(join(caDirectory, CA_KEY_FILE), 0o644);
    await expect(loadCertificateAuthority(caDirectory)).rejects.toMatchObject({ code: "egress_ca_insecure" });
  });
});

describe("placeholder credential rules (vault environment_variable credentials)", () => {
  const rule = { host: "api.example.com", secretName: "vcrd_abc", scheme: "placeholder" } as const;
  const carrying = { authorization: "Bearer OUTRIG_SECRET_PLACEHOLDER_vcrd_abc" };

  it("apply only where a header carries the placeholder, by host name on any port", () => {
    expect(credentialApplies(rule, "api.example.com", 443, carrying)).toBe(true);
    expect(credentialApplies(rule, "api.example.com", 8443, carrying)).toBe(true);
    expect(credentialApplies(rule, "api.example.com", 443, { authorization: "Bearer other" })).toBe(false);
    expect(credentialApplies(rule, "evil.example.com", 443, carrying)).toBe(false);
    expect(credentialApplies({ ...rule, host: "*.example.com" }, "a.example.com", 443, carrying)).toBe(true);
    expect(credentialApplies({ ...rule, host: "*.example.com" }, "example.com", 443, carrying)).toBe(false);
    expect(credentialApplies({ ...rule, host: "*" }, "anything.test", 9000, carrying)).toBe(true);
    // A scheme rule keeps matching by pattern and port, whatever the headers.
    expect(credentialApplies({ ...rule, scheme: "bearer" }, "api.example.com", 443, {})).toBe(true);
    expect(credentialApplies({ ...rule, scheme: "bearer" }, "api.example.com", 8443, {})).toBe(false);
  });

  it("swap the placeholder in headers and set nothing else", () => {
    const headers: Record<string, string> = { ...carrying, "x-other": "keep" };
    applyCredential(headers, rule, "s3cr3t");
    expect(headers).toEqual({ authorization: "Bearer s3cr3t", "x-other": "keep" });
  });
});

describe("a credential rule with a pathPrefix (one repository's token)", () => {
  const rule = {
    host: "github.com",
    secretName: "session_resource:sesrsc_a",
    scheme: "basic" as const,
    pathPrefix: "/acme/widgets",
  };

  it("applies to the repository and below, with or without .git, and nowhere else", () => {
    for (const path of ["/acme/widgets", "/acme/widgets/info/refs", "/acme/widgets.git/git-upload-pack"])
      expect(credentialApplies(rule, "github.com", 443, {}, path)).toBe(true);
    for (const path of [
      "/acme/widgetsx/info/refs",
      "/acme/other.git/info/refs",
      "/acme",
      "/",
      "/ACME/widgets",
    ])
      expect(credentialApplies(rule, "github.com", 443, {}, path)).toBe(false);
    expect(credentialApplies(rule, "api.github.com", 443, {}, "/acme/widgets")).toBe(false);
    // Without a path it is the root, which is not under the repository.
    expect(credentialApplies(rule, "github.com", 443, {})).toBe(false);
  });
});
