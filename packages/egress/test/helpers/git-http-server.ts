/** Moved to @outrig/testing (the server's end-to-end tests use the same git server). */
export { gitHttpBackend } from "@outrig/testing/upstreams";
