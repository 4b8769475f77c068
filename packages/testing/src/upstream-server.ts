/** Loopback upstreams for egress tests: they record what reached them. */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface Upstream {
  readonly port: number;
  /** Requests whose body arrived in full. */
  readonly requests: RecordedRequest[];
  /** `METHOD url` of every request whose headers arrived, even if its body never did. */
  readonly started: string[];
  close(): Promise<void>;
}

export type UpstreamHandler = (request: RecordedRequest, response: http.ServerResponse) => void;

const echo: UpstreamHandler = (request, response) => {
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify({ method: request.method, url: request.url }));
};

/** Starts on 127.0.0.1 with an OS-assigned port; HTTPS when `tls` is given. */
export async function startUpstream(
  options: { tls?: { key: string; cert: string }; handler?: UpstreamHandler } = {},
): Promise<Upstream> {
  const requests: RecordedRequest[] = [];
  const started: string[] = [];
  const handler = options.handler ?? echo;
  const listener = (request: http.IncomingMessage, response: http.ServerResponse) => {
    started.push(`${request.method} ${request.url}`);
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.once("end", () => {
      const recorded = {
        method: request.method ?? "",
        url: request.url ?? "",
        headers: request.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(recorded);
      handler(recorded, response);
    });
  };
  const server = options.tls ? https.createServer(options.tls, listener) : http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    started,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
