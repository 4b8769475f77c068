/**
 * `outrig wait`: blocks until the server answers ready (`GET /readyz` 200), so a script can start the
 * server in the background and run the first `outrig run` without a race. Exit 0 when ready, 1 after
 * the timeout (saying what it last saw).
 */
import { parseArgs } from "node:util";

export const WAIT_USAGE = `usage: outrig wait [--server URL] [--timeout SECONDS]

Waits until the server is ready (GET /readyz answers 200), then exits 0; exits 1 after the timeout.
  --server   the server (default $OUTRIG_SERVER, else the one \`outrig serve\` saved, else http://127.0.0.1:7070)
  --timeout  how long to wait, in seconds (default 60)`;

const POLL_INTERVAL_MS = 100;

export interface WaitOptions {
  /** The server from the environment or saved credentials, read again while waiting (a first start saves it). */
  readonly defaultServer: () => Promise<string>;
  readonly err: (line: string) => void;
}

export async function waitCommand(argv: readonly string[], options: WaitOptions): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      server: { type: "string" },
      timeout: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(WAIT_USAGE);
    return 0;
  }
  const seconds = values.timeout === undefined ? 60 : Number(values.timeout);
  if (!Number.isFinite(seconds) || seconds < 0) {
    options.err(`outrig wait: --timeout expects seconds, not "${values.timeout}"`);
    return 1;
  }
  const deadline = Date.now() + seconds * 1000;
  let lastSeen = "no answer";
  let server = "";
  for (;;) {
    server = (values.server ?? (await options.defaultServer())).replace(/\/+$/, "");
    try {
      const response = await fetch(`${server}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return 0;
      lastSeen = `HTTP ${response.status} ${(await response.text()).slice(0, 200)}`;
    } catch (error) {
      lastSeen =
        (error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : String(error);
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  options.err(`outrig wait: ${server} was not ready within ${seconds} s (last: ${lastSeen})`);
  return 1;
}
