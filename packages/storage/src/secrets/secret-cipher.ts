/**
 * AES-256-GCM for secret values: a random 96-bit nonce per write, the 128-bit tag stored apart, and
 * the row's identity (org, user, name) bound as associated data so a ciphertext cannot be moved.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { StorageError } from "@outrig/core";
import type { MasterKey } from "./master-key.js";

export interface SealedSecret {
  readonly ciphertext: Buffer;
  readonly nonce: Buffer;
  readonly authTag: Buffer;
  readonly keyId: string;
}

/** Identity of the row a ciphertext belongs to; part of the GCM associated data. */
export interface SecretBinding {
  readonly orgId: string;
  readonly userId: string | null;
  readonly name: string;
}

/** Encrypts with `current`; decrypts with whichever key of the ring made the ciphertext. */
export interface SecretKeyring {
  readonly current: MasterKey;
  seal(binding: SecretBinding, plaintext: string): SealedSecret;
  /** Throws StorageError `secret_key_unknown` or `secret_undecryptable`; never includes plaintext. */
  open(binding: SecretBinding, sealed: SealedSecret): string;
}

/** `previous` keys are only used to decrypt rows written before a rotation. */
export function createSecretKeyring(current: MasterKey, previous: readonly MasterKey[] = []): SecretKeyring {
  const byId = new Map<string, MasterKey>([...previous, current].map((key) => [key.id, key]));
  return {
    current,
    seal(binding, plaintext) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", current.key, nonce);
      cipher.setAAD(associatedData(binding, current.id));
      const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return { ciphertext, nonce, authTag: cipher.getAuthTag(), keyId: current.id };
    },
    open(binding, sealed) {
      const key = byId.get(sealed.keyId);
      if (!key) {
        throw new StorageError(
          "secret_key_unknown",
          `secret ${binding.name} was encrypted with master key ${sealed.keyId}, which is not configured`,
        );
      }
      try {
        const decipher = createDecipheriv("aes-256-gcm", key.key, sealed.nonce);
        decipher.setAAD(associatedData(binding, key.id));
        decipher.setAuthTag(sealed.authTag);
        return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString("utf8");
      } catch {
        // No `cause`: the failure carries nothing derived from the key or the data.
        throw new StorageError(
          "secret_undecryptable",
          `secret ${binding.name} failed authentication: wrong master key or tampered row`,
        );
      }
    },
  };
}

function associatedData(binding: SecretBinding, keyId: string): Buffer {
  return Buffer.from(
    JSON.stringify(["outrig-secret-v1", binding.orgId, binding.userId, binding.name, keyId]),
    "utf8",
  );
}
