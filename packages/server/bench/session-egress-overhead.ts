/**
 * Egress overhead per request as the server runs it: the same keep-alive POST (1 KiB) to a loopback
 * upstream, direct and through a session's socket of SessionEgress, which reads the org's policy
 * (cached ≤ 1 s), the org's secrets for the scan and the injection (cached ≤ 1 s), and
 * appends every decision to the hash-chained audit log. Postgres: DATABASE_URL, else embedded.
 * Run: `npx tsc -b && npx vite-node packages/server/bench/session-egress-overhead.ts`
 * (EGRESS_BENCH_NO_AUDIT=1: without the audit appends; EGRESS_BENCH_NO_CACHE=1: secrets read from
 * Postgres per request; EGRESS_BENCH_REQUESTS: sample count).
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createCertificateAuthority } from "@outrig/egress";
import {
  createDatabase,
  createSecretKeyring,
  ensureDatabase,
  masterKeyFromBase64,
  PostgresAuditLog,
  PostgresSecretResolver,
  PostgresSecretStore,
  startEmbeddedPostgres,
} from "@outrig/storage";
import { startUpstream } from "@outrig/testing/upstreams";
import { createTunnelAgent, requestThroughProxy } from "../../egress/test/helpers/proxy-client.js";
import { CachedEgressSecrets } from "../src/egress/cached-egress-secrets.js";
import { SessionEgress } from "../src/egress/session-egress.js";

const REQUESTS = Number(process.env.EGRESS_BENCH_REQUESTS ?? 300);
const directory = await mkdtemp(join(tmpdir(), "outrig-session-egress-bench-"));
await chmod(directory, 0o711);
const embedded = process.env.DATABASE_URL
  ? null
  : await startEmbeddedPostgres({ dataDir: join(directory, "postgres") });
const url = process.env.DATABASE_URL ?? (await ensureDatabase(embedded?.url ?? "", "outrig_egress_bench"));
const database = await createDatabase({ url });
const upstreamCa = createCertificateAuthority(undefined, { commonName: "bench upstream CA" });
const leaf = upstreamCa.issueLeaf("api.bench");
const secureUpstream = await startUpstream({ tls: { key: leaf.keyPem, cert: leaf.certificatePem } });
const plainUpstream = await startUpstream();
const masterKey = masterKeyFromBase64(randomBytes(32).toString("base64"), "bench");
const keyring = createSecretKeyring(masterKey);
const org = await database.auth.createOrg(`bench-${Date.now()}`);
const user = await database.auth.createUser(org.id, { name: "bench", role: "admin" });
await new PostgresSecretStore(database.pool, keyring).setSecret(
  { kind: "org", orgId: org.id },
  "TOKEN",
  "bench-token-value-0123456789",
);
await database.egressPolicies.put(org.id, {
  allowedHosts: [`api.bench:${secureUpstream.port}`, `plain.bench:${plainUpstream.port}`],
  credentials: [{ host: `api.bench:${secureUpstream.port}`, secretName: "TOKEN", scheme: "bearer" }],
});
const egress = await SessionEgress.create({
  home: directory,
  masterKey: masterKey.key,
  policies: database.egressPolicies,
  // As the server reads them (cached a second per org and user); EGRESS_BENCH_NO_CACHE=1 reads
  // and decrypts them from Postgres per request.
  secrets: process.env.EGRESS_BENCH_NO_CACHE
    ? new PostgresSecretResolver(database.pool, keyring)
    : new CachedEgressSecrets(new PostgresSecretResolver(database.pool, keyring)),
  // EGRESS_BENCH_NO_AUDIT=1 separates the audit appends' share of the cost.
  audit: process.env.EGRESS_BENCH_NO_AUDIT
    ? { append: async () => undefined }
    : new PostgresAuditLog(database.pool),
  pinnedHosts: new Map([
    ["api.bench", ["127.0.0.1"]],
    ["plain.bench", ["127.0.0.1"]],
  ]),
  upstreamCa: upstreamCa.certificatePem,
  log: (message) => console.error(message),
});
const { egressSocketPath } = await egress.sandboxOptions({ id: "ses_bench", orgId: org.id, userId: user.id });
const body = "x".repeat(1024);

async function time(send: () => Promise<{ status: number }>): Promise<{ p50: number; p99: number }> {
  for (let index = 0; index < 20; index += 1) await send();
  const samples: number[] = [];
  for (let index = 0; index < REQUESTS; index += 1) {
    const started = performance.now();
    const response = await send();
    samples.push(performance.now() - started);
    if (response.status !== 200) throw new Error(`bench request answered ${response.status}`);
  }
  samples.sort((left, right) => left - right);
  const at = (fraction: number) =>
    samples[Math.min(samples.length - 1, Math.floor(fraction * samples.length))] ?? 0;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}

function send(request: http.ClientRequest): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    request.once("response", (response) => {
      response.resume();
      response.once("end", () => resolve({ status: response.statusCode ?? 0 }));
    });
    request.once("error", reject);
    request.end(body);
  });
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

try {
  const directHttp = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const proxiedHttp = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const directHttps = new https.Agent({ keepAlive: true, maxSockets: 1, ca: upstreamCa.certificatePem });
  const caPem = (await import("node:fs/promises")).readFile(
    join(directory, "egress-ca", "egress-ca.crt"),
    "utf8",
  );
  const tunnel = createTunnelAgent(egressSocketPath, await caPem, true);
  const result = {
    requests: REQUESTS,
    httpDirectMs: await time(() =>
      send(
        http.request(`http://127.0.0.1:${plainUpstream.port}/bench`, { method: "POST", agent: directHttp }),
      ),
    ),
    httpProxiedMs: await time(() =>
      requestThroughProxy(
        egressSocketPath,
        "",
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
      ),
    ),
    httpsInterceptedMs: await time(() =>
      requestThroughProxy(
        egressSocketPath,
        "",
        { url: `https://api.bench:${secureUpstream.port}/bench`, method: "POST", body },
        { https: tunnel },
      ),
    ),
  };
  for (const agent of [directHttp, proxiedHttp, directHttps, tunnel]) agent.destroy();
  console.log(JSON.stringify(result, null, 2));
  console.log(
    `p50 overhead through SessionEgress (vault + audit per request): http ${round(result.httpProxiedMs.p50 - result.httpDirectMs.p50)} ms, https intercepted ${round(result.httpsInterceptedMs.p50 - result.httpsDirectMs.p50)} ms`,
  );
} finally {
  await egress.close();
  await secureUpstream.close();
  await plainUpstream.close();
  await database.close();
  await embedded?.stop();
  await rm(directory, { recursive: true, force: true });
}
