/**
 * Whether this server can do its work, for `/readyz` and a supervisor: each dependency (database,
 * sandbox provider, egress proxy) is probed on every call, and a stopping server is not ready. While
 * stopping, every request but `/healthz` and `/readyz` is answered 503 before it reaches the API.
 */
import { errorBody } from "./http-error.js";

/** Resolves when the dependency is usable; rejects (or times out) when it is not. */
export type DependencyProbe = () => Promise<void>;

export interface ReadinessReport {
  readonly ready: boolean;
  /** `ok`, or why the dependency is unusable (a short phrase; details go to the server log). */
  readonly checks: Readonly<Record<string, string>>;
  /** Set while the server stops (it takes no new work). */
  readonly stopping?: true;
}

const PROBE_TIMEOUT_MS = 2_000;
const PROBE_CACHE_MS = 1_000;
const RETRY_AFTER_SECONDS = "5";

export class Readiness {
  readonly #probes: Readonly<Record<string, DependencyProbe>>;
  readonly #log: (message: string) => void;
  /** Failures that do not heal (e.g. the embedded Postgres exited): dependency → reason. */
  readonly #failures = new Map<string, string>();
  /** Last reason logged per dependency, so a failing probe is logged once, not on every poll. */
  readonly #logged = new Map<string, string>();
  #isStopping = false;
  #checks: { at: number; entries: Promise<(readonly [string, string])[]> } | undefined;

  constructor(probes: Readonly<Record<string, DependencyProbe>>, log: (message: string) => void) {
    this.#probes = probes;
    this.#log = log;
  }

  get isStopping(): boolean {
    return this.#isStopping;
  }

  /** From now on the server takes no new requests (503) and is not ready. */
  stopTaking(): void {
    this.#isStopping = true;
  }

  /** Marks a dependency as failed for good (the server is about to exit). */
  fail(dependency: string, reason: string): void {
    this.#failures.set(dependency, reason);
  }

  async report(): Promise<ReadinessReport> {
    // Probes run at most once a second however often the (public) route is called.
    if (!this.#checks || Date.now() - this.#checks.at > PROBE_CACHE_MS) {
      this.#checks = { at: Date.now(), entries: this.#runProbes() };
    }
    const entries = (await this.#checks.entries).map(
      ([name, status]) => [name, this.#failures.get(name) ?? status] as const,
    );
    const checks = Object.fromEntries(entries);
    const isHealthy = entries.every(([, status]) => status === "ok");
    return {
      ready: isHealthy && !this.#isStopping,
      checks,
      ...(this.#isStopping ? { stopping: true as const } : {}),
    };
  }

  #runProbes(): Promise<(readonly [string, string])[]> {
    return Promise.all(
      Object.entries(this.#probes).map(async ([name, probe]) => {
        const failure = this.#failures.get(name);
        if (failure) return [name, failure] as const;
        return [name, await this.#probe(name, probe)] as const;
      }),
    );
  }

  /** Wraps the API's fetch: while stopping, new requests get 503 (liveness and readiness still answer). */
  gate<Rest extends unknown[]>(
    fetch: (request: Request, ...rest: Rest) => Response | Promise<Response>,
  ): (request: Request, ...rest: Rest) => Response | Promise<Response> {
    return (request, ...rest) => {
      if (!this.#isStopping) return fetch(request, ...rest);
      const { pathname } = new URL(request.url);
      if (pathname === "/healthz" || pathname === "/readyz") return fetch(request, ...rest);
      return Response.json(
        errorBody(
          503,
          "server_stopping",
          "The server is shutting down and takes no new requests; retry shortly.",
        ),
        { status: 503, headers: { "retry-after": RETRY_AFTER_SECONDS, connection: "close" } },
      );
    };
  }

  async #probe(name: string, probe: DependencyProbe): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
        PROBE_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([probe(), timeout]);
      if (this.#logged.has(name)) {
        this.#logged.delete(name);
        this.#log(`readiness: ${name} is usable again`);
      }
      return "ok";
    } catch (error) {
      const detail = (error as Error).message;
      if (this.#logged.get(name) !== detail) {
        this.#logged.set(name, detail);
        this.#log(`readiness: ${name} is unusable: ${detail}`);
      }
      return "unavailable";
    } finally {
      clearTimeout(timer);
    }
  }
}
