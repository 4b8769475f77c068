/**
 * Cross-worker signals over Postgres LISTEN/NOTIFY: new session events (so SSE served by any worker
 * sees events written by another), cancel requests (so the worker running a step aborts it) and
 * deletions (so streams open on every worker end with `session.deleted`).
 */
import { SESSION_EVENTS_CHANNEL } from "@outrig/core";
import pg from "pg";

export const CONTROL_CHANNEL = "outrig_control";

export interface NotificationHandlers {
  onSessionEvents(sessionId: string, lastSeq: number): void;
  onCancel(sessionId: string): void;
  /** A session was deleted (on any worker, this one included). */
  onDeleted?(sessionId: string): void;
  log(message: string): void;
}

export interface PgNotifications {
  close(): Promise<void>;
}

/** Listens on a dedicated connection and reconnects when it drops. */
export async function listenForNotifications(
  url: string,
  handlers: NotificationHandlers,
): Promise<PgNotifications> {
  let client: pg.Client | undefined;
  let isClosed = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url });
    next.on("notification", (message) => {
      const payload = message.payload ?? "";
      if (message.channel === SESSION_EVENTS_CHANNEL) {
        const separator = payload.lastIndexOf(":");
        const seq = Number(payload.slice(separator + 1));
        if (separator > 0 && Number.isInteger(seq))
          handlers.onSessionEvents(payload.slice(0, separator), seq);
      } else if (message.channel === CONTROL_CHANNEL && payload.startsWith("cancel:")) {
        handlers.onCancel(payload.slice("cancel:".length));
      } else if (message.channel === CONTROL_CHANNEL && payload.startsWith("deleted:")) {
        handlers.onDeleted?.(payload.slice("deleted:".length));
      }
    });
    next.on("error", (error) => {
      handlers.log(`notification connection lost: ${error.message}`);
      scheduleReconnect();
    });
    await next.connect();
    await next.query(`LISTEN ${SESSION_EVENTS_CHANNEL}`);
    await next.query(`LISTEN ${CONTROL_CHANNEL}`);
    client = next;
  };
  const scheduleReconnect = () => {
    const old = client;
    client = undefined;
    void old?.end().catch(() => undefined);
    if (isClosed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connect().catch((error: Error) => {
        handlers.log(`cannot listen for notifications: ${error.message}`);
        scheduleReconnect();
      });
    }, 1000);
    retryTimer.unref();
  };

  await connect();
  return {
    async close() {
      isClosed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await client?.end().catch(() => undefined);
    },
  };
}

export async function broadcastCancel(pool: pg.Pool, sessionId: string): Promise<void> {
  await pool.query("SELECT pg_notify($1, $2)", [CONTROL_CHANNEL, `cancel:${sessionId}`]);
}

/** Tells every worker (this one too) that a session is gone, so their open streams end. */
export async function broadcastDeleted(pool: pg.Pool, sessionId: string): Promise<void> {
  await pool.query("SELECT pg_notify($1, $2)", [CONTROL_CHANNEL, `deleted:${sessionId}`]);
}
