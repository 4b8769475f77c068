/** `git http-backend` behind a tiny CGI bridge on an HTTPS upstream that demands one token. */
import { spawn } from "node:child_process";
import type http from "node:http";
import type { RecordedRequest, UpstreamHandler } from "./upstream-server.js";

/** Accepts `Authorization: Basic base64(any:token)` or `Bearer token`; anything else gets 401. */
export function gitHttpBackend(projectRoot: string, token: string): UpstreamHandler {
  return (request, response) => {
    const authorization = request.headers.authorization ?? "";
    const basic = /^Basic (\S+)$/i.exec(authorization)?.[1];
    const presented = basic
      ? Buffer.from(basic, "base64").toString("utf8").split(":").slice(1).join(":")
      : /^Bearer (\S+)$/i.exec(authorization)?.[1];
    if (presented !== token) {
      response.writeHead(401, { "www-authenticate": 'Basic realm="git"', "content-type": "text/plain" });
      response.end("token required\n");
      return;
    }
    runCgi(projectRoot, request, response);
  };
}

function runCgi(projectRoot: string, request: RecordedRequest, response: http.ServerResponse): void {
  const url = new URL(request.url, "https://git.invalid");
  const child = spawn("git", ["http-backend"], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: "1",
      REMOTE_USER: "token-holder",
      REQUEST_METHOD: request.method,
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: String(request.headers["content-type"] ?? ""),
      CONTENT_LENGTH: String(request.body.length),
      HTTP_CONTENT_ENCODING: String(request.headers["content-encoding"] ?? ""),
      GIT_HTTP_MAX_REQUEST_BUFFER: "100M",
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.stdin.end(request.body);
  child.once("close", () => {
    const output = Buffer.concat(chunks);
    const split = output.indexOf("\r\n\r\n");
    const headerEnd = split >= 0 ? split : output.indexOf("\n\n");
    const separatorLength = split >= 0 ? 4 : 2;
    const headerText = output.subarray(0, Math.max(headerEnd, 0)).toString("latin1");
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of headerText.split(/\r?\n/)) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
      else headers[name] = value;
    }
    response.writeHead(status, headers);
    response.end(headerEnd >= 0 ? output.subarray(headerEnd + separatorLength) : output);
  });
}
