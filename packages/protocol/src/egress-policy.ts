/**
 * An org's egress policy as the API takes and returns it (`PUT/GET /v1/egress-policy`): which hosts
 * the sandbox may reach through the egress proxy, and which secret the proxy adds for which host.
 * Host patterns are names (an internal host is pinned by the operator, OUTRIG_EGRESS_HOSTS) with an
 * optional port: `github.com` allows ports 443 and 80 only, `git.corp:8443` that port only.
 */
import { z } from "zod";

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** RFC 9110 token characters. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/;
/** Headers a credential rule must not set: they frame the request or belong to the proxy. */
const RESERVED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "proxy-authorization",
  "proxy-connection",
]);

/** Why `value` is not a host pattern, or null. Messages never repeat the value. */
function hostPatternProblem(value: string): string | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) return "must not contain control characters";
  if (/[/\s@?#]/.test(value) || /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    return "a host name only, with an optional :port: no scheme, path, user or spaces";
  }
  const withPort = /^([^:[\]]+):(\d+)$/.exec(value);
  if (withPort?.[2] !== undefined && !isPort(withPort[2])) return "the port of host:port must be 1-65535";
  const host = withPort?.[1] ?? value;
  if (host.includes(":") || host.includes("[")) {
    return "must be a host name or host:port, not an IP address (pin internal hosts with OUTRIG_EGRESS_HOSTS)";
  }
  const isWildcard = host.startsWith("*.");
  const name = (isWildcard ? host.slice(2) : host).toLowerCase();
  if (name.includes("*")) return "a wildcard is only allowed as a leading *. (e.g. *.github.com)";
  if (!HOST_NAME.test(name) || name.length > 253) {
    return "must be a host name like api.github.com or a wildcard like *.github.com";
  }
  if (/^[0-9]+$/.test(name.slice(name.lastIndexOf(".") + 1))) {
    return "must be a host name, not an IP address (pin internal hosts with OUTRIG_EGRESS_HOSTS)";
  }
  if (isWildcard && !name.includes("."))
    return "a wildcard must name at least two labels, e.g. *.example.com";
  return null;
}

function isPort(digits: string): boolean {
  const port = Number(digits);
  return digits.length <= 5 && port >= 1 && port <= 65535;
}

/**
 * An exact host name (`api.github.com`) or a suffix wildcard (`*.github.com`), optionally `:port`;
 * without a port it means 443 and 80 only. Stored lower-case, the port without leading zeros.
 */
export const EgressHostPattern = z
  .string()
  .min(1)
  .max(255)
  .superRefine((value, context) => {
    const problem = hostPatternProblem(value);
    if (problem) context.addIssue({ code: "custom", message: problem });
  })
  .transform((value) => value.toLowerCase().replace(/:0*(\d+)$/, ":$1"));
export type EgressHostPattern = z.infer<typeof EgressHostPattern>;

export const EgressCredentialRule = z
  .strictObject({
    /** Host (or `*.suffix`), optionally `:port` (default 443), whose HTTPS requests get the credential. */
    host: EgressHostPattern,
    /** Name of an org or user secret (`outrig secrets set NAME`). */
    secretName: z.string().regex(SECRET_NAME, {
      message: "a secret name is 1-128 letters, digits or underscores and does not start with a digit",
    }),
    /** `bearer`: Authorization: Bearer; `basic`: Basic base64(username:secret), as git uses; `header`: a named header. */
    scheme: z.enum(["bearer", "basic", "header"]),
    /** For `basic`; default `x-access-token`. */
    username: z
      .string()
      .min(1)
      .max(256)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
      .regex(/^[^\u0000-\u001f\u007f:]+$/, { message: "must not contain ':' or control characters" })
      .optional(),
    /** For `header`, e.g. `x-api-key`. */
    header: z.string().regex(HEADER_NAME, { message: "must be an HTTP header name" }).optional(),
    /**
     * Request headers only, never to a host that echoes: the whole response is read and scanned
     * (decoded, for any 12 characters of the secret in any known transform) before it reaches the
     * sandbox; one that repeats it is withheld, flagged in the audit log, and the secret is withdrawn
     * from that session. Default false.
     */
    isHeaderOnly: z.boolean().optional(),
  })
  .superRefine((rule, context) => {
    if (rule.scheme === "header" && rule.header === undefined) {
      context.addIssue({ code: "custom", path: ["header"], message: 'required when scheme is "header"' });
    }
    if (rule.scheme !== "header" && rule.header !== undefined) {
      context.addIssue({ code: "custom", path: ["header"], message: 'only allowed when scheme is "header"' });
    }
    if (rule.scheme !== "basic" && rule.username !== undefined) {
      context.addIssue({
        code: "custom",
        path: ["username"],
        message: 'only allowed when scheme is "basic"',
      });
    }
    if (rule.header !== undefined && RESERVED_HEADERS.has(rule.header.toLowerCase())) {
      context.addIssue({
        code: "custom",
        path: ["header"],
        message: "this header cannot carry a credential",
      });
    }
  });
export type EgressCredentialRule = z.infer<typeof EgressCredentialRule>;

export const MAX_EGRESS_HOSTS = 500;
export const MAX_EGRESS_CREDENTIALS = 100;

/** The whole policy: `GET` returns it (empty lists when none is set: every host is refused). */
export const EgressPolicyBody = z.strictObject({
  allowedHosts: z.array(EgressHostPattern).max(MAX_EGRESS_HOSTS),
  credentials: z.array(EgressCredentialRule).max(MAX_EGRESS_CREDENTIALS).default([]),
  /**
   * Whether the org's environments may use `unrestricted` networking, which gives their sessions this
   * whole allowlist (a `limited` environment gets only the hosts it names that this list covers).
   * Default false: creating or updating an environment to `unrestricted` is then a 403.
   */
  allowUnrestrictedEnvironments: z.boolean().optional(),
});
export type EgressPolicyBody = z.infer<typeof EgressPolicyBody>;
