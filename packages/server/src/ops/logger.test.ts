import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { loadOperationsConfig } from "./operations-config.js";

function capture(isTTY: boolean): { destination: Writable & { isTTY: boolean }; lines: string[] } {
  const lines: string[] = [];
  const destination = Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString("utf8"));
        callback();
      },
    }),
    { isTTY },
  );
  return { destination, lines };
}

const clock = () => new Date("2026-12-06T10:00:00.123Z");

describe("createLogger", () => {
  it("writes one JSON object per line when the destination is not a terminal, leaving undefined fields out", () => {
    const { destination, lines } = capture(false);
    createLogger({ destination, clock }).info("request", { method: "GET", status: 200, org_id: undefined });
    expect(lines).toEqual([
      '{"time":"2026-12-06T10:00:00.123Z","level":"info","msg":"request","method":"GET","status":200}\n',
    ]);
  });

  it("writes readable text on a terminal, quoting values with spaces", () => {
    const { destination, lines } = capture(true);
    createLogger({ destination, clock }).warn("sandbox sweep", { error: "no such file" });
    expect(lines).toEqual(['10:00:00.123 WARN  sandbox sweep error="no such file"\n']);
  });

  it("drops records below the level and reports which levels are on", () => {
    const { destination, lines } = capture(false);
    const logger = createLogger({ destination, level: "warn", clock });
    logger.info("dropped");
    logger.error("kept");
    expect(lines).toHaveLength(1);
    expect(logger.isEnabled("info")).toBe(false);
    expect(logger.isEnabled("error")).toBe(true);
  });
});

describe("loadOperationsConfig", () => {
  it("derives the traces URL from OTEL_EXPORTER_OTLP_ENDPOINT and parses the metrics address", () => {
    expect(
      loadOperationsConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
        OUTRIG_METRICS_LISTEN: "0.0.0.0:9464",
        OUTRIG_LOG_LEVEL: "DEBUG",
      }),
    ).toEqual({
      logLevel: "debug",
      metricsListen: { host: "0.0.0.0", port: 9464 },
      otlpTracesUrl: "http://collector:4318/v1/traces",
      serviceName: "outrig",
    });
    expect(loadOperationsConfig({})).toEqual({ logLevel: "info", serviceName: "outrig" });
  });

  it("names the key of a bad value", () => {
    expect(() => loadOperationsConfig({ OUTRIG_LOG_LEVEL: "loud" })).toThrow("OUTRIG_LOG_LEVEL");
    expect(() => loadOperationsConfig({ OUTRIG_METRICS_LISTEN: "9464" })).toThrow("OUTRIG_METRICS_LISTEN");
    expect(() => loadOperationsConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "grpc://x:4317" })).toThrow(
      "OTEL_EXPORTER_OTLP_ENDPOINT",
    );
  });
});
