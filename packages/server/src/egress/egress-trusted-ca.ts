/**
 * `OUTRIG_EGRESS_CA_FILE`: the certificate authorities egress trusts for upstream TLS beside Node's
 * roots, for hosts behind a private CA (a company's internal services, a TLS-inspecting proxy).
 */
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import tls from "node:tls";
import { ConfigError } from "@outrig/core";

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Node's roots followed by every certificate in `file` (PEM, one or more). Throws ConfigError naming
 * the file when it cannot be read or holds no valid certificate, so a typo stops the start.
 * @example
 * const upstreamCa = await loadEgressTrustedCa("/etc/ssl/private-ca.pem");
 */
export async function loadEgressTrustedCa(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(
      "invalid_config",
      `OUTRIG_EGRESS_CA_FILE ${file} cannot be read: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const certificates = text.match(PEM_CERTIFICATE) ?? [];
  if (certificates.length === 0)
    throw new ConfigError("invalid_config", `OUTRIG_EGRESS_CA_FILE ${file} holds no PEM certificate`);
  for (const [index, pem] of certificates.entries()) {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new ConfigError(
        "invalid_config",
        `OUTRIG_EGRESS_CA_FILE ${file}: certificate ${index + 1} is not valid (${(error as Error).message})`,
      );
    }
  }
  return [...tls.rootCertificates, ...certificates];
}
