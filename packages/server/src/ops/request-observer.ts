/**
 * Hono middleware: one log line and the HTTP metrics per request, labelled by the route pattern
 * (`/v1/sessions/:id`), never the raw path, so ids stay out of metric labels.
 */
import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Env } from "../app.js";
import type { Logger } from "./logger.js";
import type { OpsMetrics } from "./ops-metrics.js";

export function createRequestObserver(logger: Logger, metrics: OpsMetrics): MiddlewareHandler<Env> {
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const route = routePatternOf(matchedRoutes(c));
      const status = c.res.status;
      metrics.recordRequest(c.req.method, route, status, seconds);
      // Health probes come every few seconds from orchestrators: logged at debug, counted as any request.
      const level = PROBE_ROUTES.has(route) ? "debug" : "info";
      if (logger.isEnabled(level)) {
        const caller = c.get("caller");
        logger[level]("request", {
          method: c.req.method,
          route,
          status,
          duration_ms: Math.round(seconds * 100_000) / 100,
          request_id: c.get("requestId"),
          org_id: caller?.orgId,
          key_id: caller?.keyId,
        });
      }
    }
  };
}

const PROBE_ROUTES = new Set(["/healthz", "/readyz"]);

/** The pattern of the handler that answered: the last matched route that is not middleware. */
function routePatternOf(routes: readonly { method: string; path: string }[]): string {
  for (let index = routes.length - 1; index >= 0; index -= 1) {
    const route = routes[index];
    if (route && route.method !== "ALL") return route.path;
  }
  return "unmatched";
}
