/**
 * A session's vault credentials as its egress uses them: each environment_variable credential is a
 * `placeholder` rule per allowed host (`*` when unrestricted) and a variable in the sandbox holding
 * only its placeholder. The placeholder names the credential's `secrets` row, never its value, and
 * the value is resolved at injection time by the same resolver as every other egress secret.
 */
import { type CredentialRule, secretPlaceholder } from "@outrig/egress";
import type { SessionVaultCredentials } from "@outrig/storage";

export interface VaultEgress {
  readonly rules: readonly CredentialRule[];
  /** Variable name → placeholder, for the sandbox's environment. */
  readonly env: Readonly<Record<string, string>>;
}

export const NO_VAULT_EGRESS: VaultEgress = { rules: [], env: {} };

export function toVaultEgress(credentials: SessionVaultCredentials): VaultEgress {
  const rules: CredentialRule[] = [];
  const env: Record<string, string> = {};
  for (const credential of credentials.environment) {
    if (!credential.injectHeader || credential.allowedHosts?.length === 0) continue;
    env[credential.secretName] = secretPlaceholder(credential.secretRef);
    for (const host of credential.allowedHosts ?? ["*"]) {
      rules.push({ host, secretName: credential.secretRef, scheme: "placeholder" });
    }
  }
  return { rules, env };
}
