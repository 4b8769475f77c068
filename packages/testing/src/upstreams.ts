/** Loopback HTTP(S) upstreams and a token-protected git server; free of vitest, so benchmarks can use them. */
export { gitHttpBackend } from "./git-http-backend.js";
export {
  type RecordedRequest,
  startUpstream,
  type Upstream,
  type UpstreamHandler,
} from "./upstream-server.js";
