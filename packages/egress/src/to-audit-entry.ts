import type { EgressAuditEvent } from "./egress-proxy.js";

/** The shape PostgresAuditLog.append takes (structurally; egress does not depend on storage). */
export interface EgressAuditEntry {
  readonly kind: "egress" | "secret_use";
  readonly sessionId?: string;
  readonly userId?: string;
  readonly data: Record<string, unknown>;
}

/**
 * Maps a proxy event to an audit log entry: names, hosts and decisions only, never a value.
 * @example onAudit: (event) => void auditLog.append(event.context.orgId, toAuditEntry(event)).catch(log)
 */
export function toAuditEntry(event: EgressAuditEvent): EgressAuditEntry {
  return {
    kind: event.kind,
    ...(event.context.sessionId === undefined ? {} : { sessionId: event.context.sessionId }),
    ...(event.context.userId === undefined ? {} : { userId: event.context.userId }),
    data: {
      method: event.method,
      url: `${event.scheme}://${event.host}:${event.port}${event.path}`,
      decision: event.decision,
      refusal: event.refusal,
      reason: event.message,
      isFlagged: event.isFlagged,
      matched: event.matched,
      status: event.status,
      secretNames: event.secretNames,
      durationMs: Math.round(event.durationMs * 1000) / 1000,
    },
  };
}
