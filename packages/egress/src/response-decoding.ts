/**
 * Content codings egress can undo, so a response is scanned as the client will read it. A response
 * carrying an injected credential is decoded before the scan and forwarded decoded; one in a coding
 * not listed here is refused, never passed through unscanned.
 */
import type { Transform } from "node:stream";
import zlib from "node:zlib";

/** What egress asks an upstream for when it must read the response (Node 20 has no zstd decoder). */
export const DECODED_CODINGS: readonly string[] = ["gzip", "deflate", "br"];

/**
 * The client's `Accept-Encoding` limited to codings egress decodes (`identity` when none is left),
 * so an upstream has no reason to answer in one it cannot read.
 */
export function acceptedEncoding(clientValue: string | string[] | undefined): string {
  const kept = [clientValue ?? []]
    .flat()
    .join(",")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => {
      const coding = item.split(";")[0]?.trim().toLowerCase() ?? "";
      return DECODED_CODINGS.includes(coding) || coding === "identity" || coding === "x-gzip";
    });
  return kept.length > 0 ? kept.join(", ") : "identity";
}

/**
 * Decoders for a `Content-Encoding` value, in the order to apply them (the last coding applied is
 * undone first). Empty for no coding or `identity`; `{ unknown }` names the first coding egress cannot decode.
 * Truncated input decodes as far as it goes (a cut-off response is scanned, not refused).
 */
export function decodersFor(contentEncoding: string | undefined): Transform[] | { unknown: string } {
  const codings = (contentEncoding ?? "")
    .split(",")
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== "" && coding !== "identity");
  const decoders: Transform[] = [];
  for (const coding of codings.reverse()) {
    switch (coding) {
      case "gzip":
      case "x-gzip":
        decoders.push(zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH }));
        break;
      case "deflate":
        decoders.push(zlib.createInflate({ finishFlush: zlib.constants.Z_SYNC_FLUSH }));
        break;
      case "br":
        decoders.push(zlib.createBrotliDecompress({ finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH }));
        break;
      default:
        for (const decoder of decoders) decoder.destroy();
        return { unknown: coding };
    }
  }
  return decoders;
}
