/**
 * The Prometheus scrape endpoint on its own address (OUTRIG_METRICS_LISTEN), apart from the API: the
 * series are server-wide, so no org's key may read them; whoever reaches this address may.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "./logger.js";
import type { OpsMetrics } from "./ops-metrics.js";

export interface MetricsListener {
  /** `http://host:port/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on `host:port` (port 0: any free port); answers GET /metrics, 404 for anything else. */
export async function startMetricsListener(
  address: { host: string; port: number },
  metrics: OpsMetrics,
  logger: Logger,
): Promise<MetricsListener> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? "").split("?")[0];
    if (request.method !== "GET" || path !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    metrics.render().then(
      ({ contentType, body }) => response.writeHead(200, { "content-type": contentType }).end(body),
      (error: Error) => {
        logger.error("metrics scrape failed", { error: error.message });
        response.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
