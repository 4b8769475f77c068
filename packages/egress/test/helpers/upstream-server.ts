/** Moved to @outrig/testing (the server's end-to-end tests use the same upstreams). */
export {
  type RecordedRequest,
  startUpstream,
  type Upstream,
  type UpstreamHandler,
} from "@outrig/testing/upstreams";
