/** Child process for the crash test: starts embedded Postgres, prints its handle as JSON, then idles until killed. */
import { startEmbeddedPostgres } from "../../src/index.js";

const dataDir = process.argv[2];
if (!dataDir) throw new Error("usage: start-embedded-and-wait.ts <dataDir>");
const postgres = await startEmbeddedPostgres({ dataDir });
process.stdout.write(`${JSON.stringify({ pid: postgres.pid, url: postgres.url, port: postgres.port })}\n`);
setInterval(() => {}, 60_000);
