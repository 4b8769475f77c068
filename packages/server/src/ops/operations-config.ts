/** Operations settings from the environment: log level and format, the metrics address, the OTLP endpoint. */
import { ConfigError } from "@outrig/core";
import { LogFormat, LogLevel } from "./logger.js";

export interface OperationsConfig {
  /** OUTRIG_LOG_LEVEL (default info). */
  readonly logLevel: LogLevel;
  /** OUTRIG_LOG_FORMAT; unset: text on a terminal, JSON otherwise. */
  readonly logFormat?: LogFormat;
  /** OUTRIG_METRICS_LISTEN (`host:port`); unset: no metrics endpoint. */
  readonly metricsListen?: { readonly host: string; readonly port: number };
  /** The OTLP/HTTP traces URL; unset: no tracing at all. */
  readonly otlpTracesUrl?: string;
  /** OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_TRACES_HEADERS (`key=value,…`). */
  readonly otlpHeaders?: Readonly<Record<string, string>>;
  /** OTEL_SERVICE_NAME (default `outrig`). */
  readonly serviceName: string;
}

/** Parses the operations keys; throws ConfigError naming the key on a bad value. */
export function loadOperationsConfig(env: Readonly<Record<string, string | undefined>>): OperationsConfig {
  const level = LogLevel.safeParse(env.OUTRIG_LOG_LEVEL?.toLowerCase() || "info");
  if (!level.success)
    throw new ConfigError(
      "invalid_config",
      "Invalid OUTRIG_LOG_LEVEL: use debug, info, warn, error or silent",
    );
  const format = env.OUTRIG_LOG_FORMAT ? LogFormat.safeParse(env.OUTRIG_LOG_FORMAT.toLowerCase()) : undefined;
  if (format && !format.success)
    throw new ConfigError("invalid_config", "Invalid OUTRIG_LOG_FORMAT: use json or text");
  const tracesUrl = otlpTracesUrl(env);
  const headers = parseHeaders(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS);
  return {
    logLevel: level.data,
    ...(format?.success ? { logFormat: format.data } : {}),
    ...(env.OUTRIG_METRICS_LISTEN ? { metricsListen: parseListen(env.OUTRIG_METRICS_LISTEN) } : {}),
    ...(tracesUrl ? { otlpTracesUrl: tracesUrl } : {}),
    ...(headers ? { otlpHeaders: headers } : {}),
    serviceName: env.OTEL_SERVICE_NAME || "outrig",
  };
}

/** As the OTLP exporter spec says: the traces endpoint is used as is, the base endpoint gets `/v1/traces`. */
function otlpTracesUrl(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === "true") return undefined;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const key = traces ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
  const value = traces || base;
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError("invalid_config", `Invalid ${key}: not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConfigError("invalid_config", `Invalid ${key}: use an http(s) URL (OTLP/HTTP)`);
  return traces ? url.href : `${url.href.replace(/\/+$/, "")}/v1/traces`;
}

function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new ConfigError(
      "invalid_config",
      "Invalid OUTRIG_METRICS_LISTEN: use host:port, e.g. 127.0.0.1:9464",
    );
  return { host: match[1] ?? match[2] ?? "127.0.0.1", port };
}

function parseHeaders(value: string | undefined): Record<string, string> | undefined {
  if (!value) return undefined;
  const headers: Record<string, string> = {};
  for (const pair of value.split(",")) {
    const separator = pair.indexOf("=");
    if (separator <= 0) continue;
    headers[decodeURIComponent(pair.slice(0, separator).trim())] = decodeURIComponent(
      pair.slice(separator + 1).trim(),
    );
  }
  return headers;
}
