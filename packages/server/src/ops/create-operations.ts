/**
 * Logs, metrics and traces for one server: built once from the operations config and handed to the
 * composition root, which wraps its session store, model factory and egress audit with them.
 */
import type { ModelFactory, SessionStore } from "@outrig/core";
import type { MiddlewareHandler } from "hono";
import type { Env } from "../app.js";
import { createLogger, type Logger } from "./logger.js";
import { type MetricsListener, startMetricsListener } from "./metrics-listener.js";
import { observeModelFactory } from "./observe-model-factory.js";
import { observeSessionStore } from "./observe-session-store.js";
import type { OperationsConfig } from "./operations-config.js";
import { OpsMetrics } from "./ops-metrics.js";
import { OpsTracing } from "./ops-tracing.js";
import { createRequestObserver } from "./request-observer.js";

export interface Operations {
  readonly logger: Logger;
  readonly metrics: OpsMetrics;
  /** Undefined when no OTLP endpoint is configured: nothing is traced. */
  readonly tracing: OpsTracing | undefined;
  readonly requestObserver: MiddlewareHandler<Env>;
  observeSessionStore(store: SessionStore): SessionStore;
  observeModelFactory(factory: ModelFactory): ModelFactory;
  /** Counts the egress decisions that go through `audit` (one `egress` entry per request). */
  observeEgressAudit<E extends EgressAuditEntry>(audit: EgressAudit<E>): EgressAudit<E>;
  /** The `outrig_sessions` gauge reads its counts from here at each scrape. */
  countSessionsWith(count: () => Promise<readonly { status: string; count: number }[]>): void;
  /** Starts the /metrics listener when OUTRIG_METRICS_LISTEN is set; its URL, else null. */
  listen(): Promise<string | null>;
  /** Sends the spans ended so far (no-op without tracing). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface EgressAuditEntry {
  readonly kind: string;
  readonly data?: unknown;
}

interface EgressAudit<E extends EgressAuditEntry> {
  append(orgId: string, entry: E): Promise<unknown>;
}

export interface OperationsOptions {
  /** Replaces the logger built from the config (tests capture lines with it). */
  readonly logger?: Logger;
  readonly serviceInstanceId: string;
}

export function createOperations(config: OperationsConfig, options: OperationsOptions): Operations {
  const logger =
    options.logger ??
    createLogger({ level: config.logLevel, ...(config.logFormat ? { format: config.logFormat } : {}) });
  let countSessions: (() => Promise<readonly { status: string; count: number }[]>) | undefined;
  const metrics = new OpsMetrics({ countSessions: async () => (countSessions ? await countSessions() : []) });
  const tracing = config.otlpTracesUrl
    ? new OpsTracing({
        url: config.otlpTracesUrl,
        serviceName: config.serviceName,
        serviceInstanceId: options.serviceInstanceId,
        ...(config.otlpHeaders ? { headers: config.otlpHeaders } : {}),
      })
    : undefined;
  let listener: MetricsListener | undefined;
  return {
    logger,
    metrics,
    tracing,
    requestObserver: createRequestObserver(logger, metrics),
    observeSessionStore: (store) =>
      observeSessionStore(store, { logger, metrics, ...(tracing ? { tracing } : {}) }),
    observeModelFactory: (factory) => observeModelFactory(factory, metrics, tracing),
    observeEgressAudit: (audit) => ({
      append: (orgId, entry) => {
        if (entry.kind === "egress") metrics.recordEgress(decisionOf(entry.data));
        return audit.append(orgId, entry);
      },
    }),
    countSessionsWith: (count) => {
      countSessions = count;
    },
    async listen() {
      if (!config.metricsListen) return null;
      listener = await startMetricsListener(config.metricsListen, metrics, logger);
      logger.info(`metrics on ${listener.url}`);
      return listener.url;
    },
    flush: async () => {
      await tracing?.flush();
    },
    async close() {
      await listener?.close();
      await tracing
        ?.close()
        .catch((error: Error) => logger.warn("trace export failed", { error: error.message }));
    },
  };
}

function decisionOf(data: unknown): string {
  const decision = (data as { decision?: unknown } | undefined)?.decision;
  return typeof decision === "string" ? decision : "unknown";
}
