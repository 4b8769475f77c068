/**
 * Per-session canaries: fake AWS credentials in the sandbox's environment. Derived as
 * HMAC(master key, session id), so every worker knows a session's canaries without storing them.
 * A request carrying one is blocked by egress and flagged in the audit log.
 */
import { createHmac } from "node:crypto";

export interface SessionCanaries {
  /** `AKIA` + 16 base32 characters, shaped like a real access key id. */
  readonly accessKeyId: string;
  /** 40 base64 characters, shaped like a real secret access key. */
  readonly secretAccessKey: string;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export function canariesFor(masterKey: Buffer, sessionId: string): SessionCanaries {
  // A subkey, so no output of this function is ever an HMAC under the vault key itself.
  const subkey = createHmac("sha256", masterKey).update("outrig egress canaries v1").digest();
  const derive = (purpose: string) =>
    createHmac("sha256", subkey).update(`${purpose}\0${sessionId}`).digest();
  const idBytes = derive("aws_access_key_id");
  let accessKeyId = "AKIA";
  for (let index = 0; index < 16; index += 1) accessKeyId += BASE32[(idBytes[index] ?? 0) % 32];
  const secretAccessKey = Buffer.concat([derive("aws_secret_access_key"), derive("aws_secret_access_key_2")])
    .toString("base64")
    .slice(0, 40);
  return { accessKeyId, secretAccessKey };
}
