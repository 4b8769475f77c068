/**
 * The per-deployment CA that egress uses to terminate TLS: created on first use (key 0600), then
 * reused; mints one leaf certificate per host, cached. Node has no X.509 builder, so certificates
 * are assembled with node-forge while keys and signatures come from node:crypto (native speed).
 */
import { constants as cryptoConstants, generateKeyPairSync, privateEncrypt, randomBytes } from "node:crypto";
import { mkdir, open, readFile, stat, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { ConfigError } from "@outrig/core";
import forge from "node-forge";

export const CA_CERTIFICATE_FILE = "egress-ca.crt";
export const CA_KEY_FILE = "egress-ca.key";
const LEAF_CACHE_SIZE = 1000;
/** DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017 §9.2, note 1). */
const SHA256_DIGEST_INFO = Buffer.from("3031300d060960864801650304020105000420", "hex");

export interface LeafCertificate {
  readonly keyPem: string;
  readonly certificatePem: string;
}

export interface CertificateAuthority {
  /** PEM of the CA certificate: what the sandbox must trust. */
  readonly certificatePem: string;
  /** A certificate for `host` (DNS name or IP literal) signed by this CA; cached per host. */
  issueLeaf(host: string): LeafCertificate;
}

export interface CertificateAuthorityOptions {
  /** Subject common name of a new CA. Default "Outrig egress CA". */
  readonly commonName?: string;
  readonly clock?: () => Date;
}

/**
 * Loads `<directory>/egress-ca.key` and `egress-ca.crt`, creating both when absent. Throws ConfigError
 * `egress_ca_insecure` when the key is readable by group or others.
 */
export async function loadCertificateAuthority(
  directory: string,
  options: CertificateAuthorityOptions = {},
): Promise<CertificateAuthority> {
  const keyPath = join(directory, CA_KEY_FILE);
  const certificatePath = join(directory, CA_CERTIFICATE_FILE);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  let keyPem: string;
  let certificatePem: string;
  try {
    keyPem = await readFile(keyPath, "utf8");
    certificatePem = await readFile(certificatePath, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
    const created = createCaMaterial(options);
    // "wx": of two first starts, one writes; the other reads what it wrote.
    try {
      const handle = await open(keyPath, "wx", 0o600);
      try {
        await handle.writeFile(created.keyPem);
      } finally {
        await handle.close();
      }
      await writeFile(certificatePath, created.certificatePem, { mode: 0o644 });
    } catch (writeError) {
      if ((writeError as { code?: string }).code !== "EEXIST") throw writeError;
    }
    keyPem = await readFile(keyPath, "utf8");
    certificatePem = await readFileEventually(certificatePath);
  }
  if (((await stat(keyPath)).mode & 0o077) !== 0) {
    throw new ConfigError(
      "egress_ca_insecure",
      `${keyPath} must not be readable by group or others (chmod 600)`,
    );
  }
  return createCertificateAuthority({ keyPem, certificatePem }, options);
}

/** Builds a CA from PEMs; with no material, makes a fresh in-memory CA (tests). */
export function createCertificateAuthority(
  material?: { keyPem: string; certificatePem: string },
  options: CertificateAuthorityOptions = {},
): CertificateAuthority {
  const { keyPem, certificatePem } = material ?? createCaMaterial(options);
  const caCertificate = forge.pki.certificateFromPem(certificatePem);
  const clock = options.clock ?? (() => new Date());
  // One key for every leaf, as mitmproxy does: a leaf is only as trusted as the CA that signed it.
  const leafKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const leafKeyPem = leafKeys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const leafPublicKey = forge.pki.publicKeyFromPem(
    leafKeys.publicKey.export({ type: "spki", format: "pem" }).toString(),
  );
  const cache = new Map<string, LeafCertificate>();
  return {
    certificatePem,
    issueLeaf(host) {
      const cached = cache.get(host);
      if (cached) {
        cache.delete(host);
        cache.set(host, cached);
        return cached;
      }
      const certificate = forge.pki.createCertificate();
      certificate.publicKey = leafPublicKey;
      certificate.serialNumber = serialNumber();
      const now = clock();
      certificate.validity.notBefore = new Date(now.getTime() - 24 * 3600 * 1000);
      certificate.validity.notAfter = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
      certificate.setSubject([{ name: "commonName", value: host.slice(0, 64) }]);
      certificate.setIssuer(caCertificate.subject.attributes);
      certificate.setExtensions([
        { name: "basicConstraints", cA: false, critical: true },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
        { name: "extKeyUsage", serverAuth: true },
        { name: "subjectAltName", altNames: [isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }] },
        { name: "subjectKeyIdentifier" },
        {
          name: "authorityKeyIdentifier",
          keyIdentifier: caCertificate.generateSubjectKeyIdentifier().getBytes(),
        },
      ]);
      signWithNodeKey(certificate, keyPem);
      const leaf = { keyPem: leafKeyPem, certificatePem: forge.pki.certificateToPem(certificate) };
      cache.set(host, leaf);
      if (cache.size > LEAF_CACHE_SIZE) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      return leaf;
    },
  };
}

/** Writes `hostBundle` + the CA certificate to `outputPath`: the file the sandbox mounts as its roots. */
export async function writeCaBundle(
  ca: CertificateAuthority,
  outputPath: string,
  hostBundlePath = "/etc/ssl/certs/ca-certificates.crt",
): Promise<void> {
  let hostBundle = "";
  try {
    hostBundle = await readFile(hostBundlePath, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
  const separator = hostBundle.length === 0 || hostBundle.endsWith("\n") ? "" : "\n";
  await writeFile(outputPath, `${hostBundle}${separator}${ca.certificatePem}`, { mode: 0o644 });
}

function createCaMaterial(options: CertificateAuthorityOptions): { keyPem: string; certificatePem: string } {
  const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(
    keys.publicKey.export({ type: "spki", format: "pem" }).toString(),
  );
  certificate.serialNumber = serialNumber();
  const now = (options.clock ?? (() => new Date()))();
  certificate.validity.notBefore = new Date(now.getTime() - 24 * 3600 * 1000);
  certificate.validity.notAfter = new Date(now.getTime() + 10 * 365 * 24 * 3600 * 1000);
  const subject = [
    { name: "commonName", value: options.commonName ?? "Outrig egress CA" },
    { name: "organizationName", value: "Outrig" },
  ];
  certificate.setSubject(subject);
  certificate.setIssuer(subject);
  certificate.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  signWithNodeKey(certificate, keyPem);
  return { keyPem, certificatePem: forge.pki.certificateToPem(certificate) };
}

/** RSASSA-PKCS1-v1_5 over SHA-256 of the TBS certificate, computed by node:crypto rather than forge. */
function signWithNodeKey(certificate: forge.pki.Certificate, keyPem: string): void {
  const signer = {
    sign(digest: forge.md.MessageDigest): string {
      const hash = Buffer.from(digest.digest().getBytes(), "binary");
      const signature = privateEncrypt(
        { key: keyPem, padding: cryptoConstants.RSA_PKCS1_PADDING },
        Buffer.concat([SHA256_DIGEST_INFO, hash]),
      );
      return signature.toString("binary");
    },
  };
  certificate.sign(signer as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
}

function serialNumber(): string {
  // 16 random bytes, positive and minimally encoded in DER: the first byte is 0x40..0x7f. A leading
  // zero byte followed by one below 0x80 is "illegal padding" to OpenSSL, which then refuses to load
  // the certificate (curl exit 77) while GnuTLS and forge accept it.
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString("hex");
}

async function readFileEventually(path: string): Promise<string> {
  // The other creator writes the certificate right after the key.
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOENT" || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
