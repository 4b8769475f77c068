export { type AddressPolicy, anyAddress, publicAddressesOnly } from "./address-policy.js";
export {
  CA_CERTIFICATE_FILE,
  CA_KEY_FILE,
  type CertificateAuthority,
  type CertificateAuthorityOptions,
  createCertificateAuthority,
  type LeafCertificate,
  loadCertificateAuthority,
  writeCaBundle,
} from "./certificate-authority.js";
export {
  type Canary,
  type CredentialRule,
  type EgressContext,
  type EgressPolicy,
  type EgressSecrets,
  SECRET_PLACEHOLDER_PREFIX,
  secretPlaceholder,
} from "./egress-policy.js";
export {
  createEgressProxy,
  type EgressAuditEvent,
  type EgressListener,
  type EgressListenTarget,
  type EgressProxy,
  type EgressProxyOptions,
  type EgressRefusal,
  type ResolveHost,
} from "./egress-proxy.js";
export {
  DEFAULT_ALLOWED_PORTS,
  isHostAllowed,
  matchesHostPattern,
  normalizeHost,
  splitHostPattern,
} from "./host-pattern.js";
export { isOwnEndpoint, type OwnEndpoint } from "./own-endpoints.js";
export { DECODED_CODINGS } from "./response-decoding.js";
export {
  createFragmentScanner,
  createScanningTransform,
  createSecretScanner,
  MIN_SCANNED_SECRET_LENGTH,
  type ScannedValue,
  SECRET_FRAGMENT_LENGTH,
  SecretInRequestError,
  type SecretScanner,
} from "./secret-scanner.js";
export { type EgressAuditEntry, toAuditEntry } from "./to-audit-entry.js";
