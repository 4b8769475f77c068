/** Clients that reach an egress proxy over its unix socket, as the sandbox's socat bridge would. */
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import tls from "node:tls";

export interface ProxiedResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface ProxiedRequest {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/** An https.Agent whose sockets are CONNECT tunnels through the proxy, trusting `ca`. */
export function createTunnelAgent(socketPath: string, ca: string, keepAlive = false): https.Agent {
  const agent = new https.Agent({ keepAlive, maxSockets: 1 });
  agent.createConnection = (options, callback) => {
    const host = String(options.host);
    const connect = http.request({ socketPath, method: "CONNECT", path: `${host}:${options.port}` });
    connect.once("connect", (response, socket) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        callback?.(new Error(`CONNECT answered ${response.statusCode}`), undefined as unknown as Duplex);
        return;
      }
      const secure = tls.connect({ socket, servername: host, ca });
      secure.once("secureConnect", () => callback?.(null, secure));
      secure.once("error", (error) => callback?.(error, undefined as unknown as Duplex));
    });
    connect.once("error", (error) => callback?.(error, undefined as unknown as Duplex));
    connect.end();
    return undefined;
  };
  return agent;
}

/** http:// URLs go as absolute-form requests, https:// ones through a CONNECT tunnel. */
export function requestThroughProxy(
  socketPath: string,
  ca: string,
  request: ProxiedRequest,
  agents: { http?: http.Agent; https?: https.Agent } = {},
): Promise<ProxiedResponse> {
  const url = new URL(request.url);
  return new Promise((resolve, reject) => {
    const options = { method: request.method ?? "GET", headers: { ...request.headers } };
    const outgoing =
      url.protocol === "https:"
        ? https.request(url, { ...options, agent: agents.https ?? createTunnelAgent(socketPath, ca) })
        : http.request({
            ...options,
            socketPath,
            path: request.url,
            headers: { host: url.host, ...request.headers },
            ...(agents.http ? { agent: agents.http } : {}),
          });
    outgoing.once("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.once("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      response.once("error", reject);
    });
    outgoing.once("error", reject);
    outgoing.end(request.body);
  });
}
