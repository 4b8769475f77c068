/**
 * Proxy overhead per request: the same keep-alive POST (1 KiB body) to a loopback upstream, direct
 * and through the egress unix socket, over plain HTTP and over HTTPS intercepted by the proxy (with a
 * credential injected and the body scanned). Run: `npx vite-node packages/egress/bench/egress-overhead.ts`.
 */

import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { anyAddress, createCertificateAuthority, createEgressProxy } from "../src/index.js";
import { createTunnelAgent, requestThroughProxy } from "../test/helpers/proxy-client.js";
import { startUpstream } from "../test/helpers/upstream-server.js";

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

export interface EgressBenchResult {
  readonly requests: number;
  readonly httpDirectMs: Percentiles;
  readonly httpProxiedMs: Percentiles;
  readonly httpsDirectMs: Percentiles;
  readonly httpsInterceptedMs: Percentiles;
}

export async function runEgressBench(requests = 300): Promise<EgressBenchResult> {
  const directory = await mkdtemp(join(tmpdir(), "outrig-egress-bench-"));
  const upstreamCa = createCertificateAuthority(undefined, { commonName: "bench upstream CA" });
  const egressCa = createCertificateAuthority();
  const leaf = upstreamCa.issueLeaf("api.bench");
  const secureUpstream = await startUpstream({ tls: { key: leaf.keyPem, cert: leaf.certificatePem } });
  const plainUpstream = await startUpstream();
  const proxy = createEgressProxy({
    ca: egressCa,
    policy: () => ({
      allowedHosts: [`api.bench:${secureUpstream.port}`, `plain.bench:${plainUpstream.port}`],
      credentials: [{ host: `api.bench:${secureUpstream.port}`, secretName: "TOKEN", scheme: "bearer" }],
      canaries: ["AKIAOUTRIGCANARY0000FAKE"],
    }),
    secrets: {
      resolveSecret: async () => "bench-token-value-0123456789",
      resolveAllSecrets: async () => new Map([["TOKEN", "bench-token-value-0123456789"]]),
    },
    onAudit: () => undefined,
    resolveHost: async () => [{ address: "127.0.0.1", family: 4 }],
    addressPolicy: anyAddress,
    upstreamCa: upstreamCa.certificatePem,
  });
  const socketPath = join(directory, "proxy.sock");
  await proxy.listen({ socketPath }, { orgId: "org_bench" });
  const body = "x".repeat(1024);
  try {
    const time = async (send: () => Promise<{ status: number }>): Promise<Percentiles> => {
      for (let index = 0; index < 20; index += 1) await send();
      const samples: number[] = [];
      for (let index = 0; index < requests; index += 1) {
        const started = performance.now();
        const response = await send();
        samples.push(performance.now() - started);
        if (response.status !== 200) throw new Error(`bench request answered ${response.status}`);
      }
      return percentiles(samples);
    };
    const directHttp = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const proxiedHttp = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const directHttps = new https.Agent({ keepAlive: true, maxSockets: 1, ca: upstreamCa.certificatePem });
    const tunnel = createTunnelAgent(socketPath, egressCa.certificatePem, true);
    const result: EgressBenchResult = {
      requests,
      httpDirectMs: await time(() =>
        send(
          http.request(`http://127.0.0.1:${plainUpstream.port}/bench`, { method: "POST", agent: directHttp }),
          body,
        ),
      ),
      httpProxiedMs: await time(() =>
        requestThroughProxy(
          socketPath,
          egressCa.certificatePem,
          { url: `http://plain.bench:${plainUpstream.port}/bench`, method: "POST", body },
          { http: proxiedHttp },
        ),
      ),
      httpsDirectMs: await time(() =>
        send(
          https.request(`https://127.0.0.1:${secureUpstream.port}/bench`, {
            method: "POST",
            agent: directHttps,
            servername: "api.bench",
            headers: { host: "api.bench", authorization: "Bearer bench-token-value-0123456789" },
          }),
          body,
        ),
      ),
      httpsInterceptedMs: await time(() =>
        requestThroughProxy(
          socketPath,
          egressCa.certificatePem,
          { url: `https://api.bench:${secureUpstream.port}/bench`, method: "POST", body },
          { https: tunnel },
        ),
      ),
    };
    for (const agent of [directHttp, proxiedHttp, directHttps, tunnel]) agent.destroy();
    return result;
  } finally {
    await proxy.close();
    await secureUpstream.close();
    await plainUpstream.close();
    await rm(directory, { recursive: true, force: true });
  }
}

function send(request: http.ClientRequest, body: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    request.once("response", (response) => {
      response.resume();
      response.once("end", () => resolve({ status: response.statusCode ?? 0 }));
    });
    request.once("error", reject);
    request.end(body);
  });
}

function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((left, right) => left - right);
  const at = (fraction: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

if (import.meta.url.endsWith("/egress-overhead.ts") && process.env.EGRESS_BENCH !== "0") {
  const result = await runEgressBench(Number(process.env.EGRESS_BENCH_REQUESTS ?? 300));
  console.log(JSON.stringify(result, null, 2));
  console.log(
    `p50 overhead: http ${round(result.httpProxiedMs.p50 - result.httpDirectMs.p50)} ms, https intercepted ${round(result.httpsInterceptedMs.p50 - result.httpsDirectMs.p50)} ms`,
  );
}
