/**
 * `GET /readyz`: 200 when the database, the sandbox provider and the egress proxy are usable and the
 * server is not stopping; 503 otherwise, naming the failing dependency. No key needed (like
 * `/healthz`, which only says the process answers); it reveals no data, only `ok` or `unavailable`.
 */
import type { Hono } from "hono";
import type { Readiness } from "../readiness.js";

export interface ReadinessRoutesDependencies {
  readonly readiness: Readiness;
}

export function registerReadinessRoutes<E extends object>(
  routes: Hono<E>,
  deps: ReadinessRoutesDependencies,
): void {
  routes.get("/readyz", async (c) => {
    const report = await deps.readiness.report();
    return c.json(report, report.ready ? 200 : 503);
  });
}
