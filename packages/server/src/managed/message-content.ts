/**
 * Image and document blocks of a `user.message` (the SDK's `BetaManagedAgentsImageBlock` /
 * `BetaManagedAgentsDocumentBlock`): their strict request schemas, the checks and caps applied when a
 * message is sent (media types, decoded sizes, base64, a `file` source resolved in the caller's org),
 * and the way back from the stored parts to the API's blocks, shown as they were sent.
 *
 * A `url` source is never fetched by the server: it goes to the provider as a URL (the provider fetches
 * it from its side), so a url source cannot make Outrig reach an internal address. Only `https` URLs are
 * accepted.
 */
import { InputError } from "@outrig/core";
import type { MediaSource, UserContentPart } from "@outrig/protocol";
import { z } from "zod";

/** The API's per-image limit. */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** Per document (decoded bytes, or UTF-8 bytes of a plain-text document). */
export const MAX_DOCUMENT_BYTES = 10 * 1024 * 1024;
/** All images and documents of one message together: they are kept in the session's log. */
export const MAX_MESSAGE_MEDIA_BYTES = 10 * 1024 * 1024;
const MAX_URL_LENGTH = 2048;

export const IMAGE_MEDIA_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"] as const;
export const DOCUMENT_MEDIA_TYPES = ["application/pdf", "text/plain"] as const;

const Base64Data = z
  .string()
  .min(1)
  .max(Math.ceil(MAX_DOCUMENT_BYTES / 3) * 4);
const HttpsUrl = z.string().max(MAX_URL_LENGTH).refine(isHttpsUrl, { message: "must be an https:// URL" });
const FileId = z
  .string()
  .max(128)
  .regex(/^file_[A-Za-z0-9_-]{1,120}$/, { message: "must be a file_… id" });
const UrlSource = z.strictObject({ type: z.literal("url"), url: HttpsUrl });
const FileSource = z.strictObject({ type: z.literal("file"), file_id: FileId });

export const ImageBlockParams = z.strictObject({
  type: z.literal("image"),
  source: z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("base64"), media_type: z.enum(IMAGE_MEDIA_TYPES), data: Base64Data }),
    UrlSource,
    FileSource,
  ]),
});
export type ImageBlockParams = z.infer<typeof ImageBlockParams>;

export const DocumentBlockParams = z.strictObject({
  type: z.literal("document"),
  source: z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("base64"), media_type: z.literal("application/pdf"), data: Base64Data }),
    z.strictObject({
      type: z.literal("text"),
      media_type: z.literal("text/plain"),
      data: z.string().min(1).max(MAX_DOCUMENT_BYTES),
    }),
    UrlSource,
    FileSource,
  ]),
  title: z.string().max(500).nullable().optional(),
  context: z.string().max(10_000).nullable().optional(),
});
export type DocumentBlockParams = z.infer<typeof DocumentBlockParams>;

export type MediaBlockParams = ImageBlockParams | DocumentBlockParams;

/** A Files API file's bytes and type, read in the caller's org; undefined when the org has no such file. */
export type ReadMessageFile = (
  orgId: string,
  fileId: string,
) => Promise<{ mimeType: string; content: Uint8Array } | undefined>;

/**
 * The stored parts of one image or document block, after the checks: bad base64, a media type the
 * block does not take, or a size over its cap is a 400; another org's (or no) file is a 404; a running
 * total over `MAX_MESSAGE_MEDIA_BYTES` is a 413. `budget.used` counts the message's bytes so far.
 */
export async function toMediaPart(
  block: MediaBlockParams,
  at: string,
  orgId: string,
  readFile: ReadMessageFile | undefined,
  budget: { used: number },
): Promise<UserContentPart> {
  const source = block.source;
  const isImage = block.type === "image";
  const cap = isImage ? MAX_IMAGE_BYTES : MAX_DOCUMENT_BYTES;
  let mediaType: string;
  let stored: MediaSource;
  let size: number;
  switch (source.type) {
    case "base64": {
      const bytes = decodeBase64(source.data, `${at}.source.data`);
      mediaType = source.media_type;
      stored = { type: "base64", data: source.data };
      size = bytes;
      break;
    }
    case "text":
      mediaType = source.media_type;
      stored = { type: "text", data: source.data };
      size = Buffer.byteLength(source.data, "utf8");
      break;
    case "url":
      mediaType = "";
      stored = { type: "url", url: source.url };
      size = 0;
      break;
    case "file": {
      if (!readFile)
        throw new InputError("unsupported_content", `${at}.source: file sources are not served here`, 400);
      const file = await readFile(orgId, source.file_id);
      if (!file) throw new InputError("not_found", `${at}.source.file_id: file not found`, 404);
      mediaType = file.mimeType.split(";")[0]?.trim().toLowerCase() ?? "";
      const allowed: readonly string[] = isImage ? IMAGE_MEDIA_TYPES : DOCUMENT_MEDIA_TYPES;
      if (!allowed.includes(mediaType))
        throw new InputError(
          "unsupported_media_type",
          `${at}.source.file_id: the file is ${file.mimeType}; ${block.type} blocks take ${allowed.join(", ")}`,
          400,
        );
      stored = { type: "file", fileId: source.file_id, data: Buffer.from(file.content).toString("base64") };
      size = file.content.byteLength;
      break;
    }
  }
  if (size > cap)
    throw new InputError(
      "content_too_large",
      `${at}: the ${block.type} is ${size} bytes; at most ${cap}`,
      400,
    );
  budget.used += size;
  if (budget.used > MAX_MESSAGE_MEDIA_BYTES)
    throw new InputError(
      "content_too_large",
      `${at}: the message's images and documents exceed ${MAX_MESSAGE_MEDIA_BYTES} bytes together`,
      413,
    );
  if (block.type === "image") return { type: "image", mediaType, source: stored };
  return {
    type: "document",
    mediaType,
    source: stored,
    ...(block.title ? { title: block.title } : {}),
    ...(block.context ? { context: block.context } : {}),
  };
}

/** The API's block for a stored part, as it was sent (a file source shows its `file_id`, not its bytes). */
export function toApiBlock(part: UserContentPart): Record<string, unknown> {
  switch (part.type) {
    case "text":
      return { type: "text", text: part.text };
    case "image":
      return { type: "image", source: toApiSource(part.mediaType, part.source) };
    case "document":
      return {
        type: "document",
        source: toApiSource(part.mediaType, part.source),
        ...(part.title ? { title: part.title } : {}),
        ...(part.context ? { context: part.context } : {}),
      };
  }
}

function toApiSource(mediaType: string, source: MediaSource): Record<string, unknown> {
  switch (source.type) {
    case "base64":
    case "text":
      return { type: source.type, media_type: mediaType, data: source.data };
    case "url":
      return { type: "url", url: source.url };
    case "file":
      return { type: "file", file_id: source.fileId };
  }
}

/** The decoded size of strict base64 (padding optional, no whitespace); a 400 for anything else. */
function decodeBase64(data: string, at: string): number {
  const isBase64 = /^[A-Za-z0-9+/]*={0,2}$/.test(data) && data.length % 4 !== 1;
  const bytes = isBase64 ? Buffer.from(data, "base64") : undefined;
  if (
    !bytes ||
    bytes.byteLength === 0 ||
    bytes.toString("base64").replace(/=+$/, "") !== data.replace(/=+$/, "")
  )
    throw new InputError("invalid_base64", `${at}: not valid base64`, 400);
  return bytes.byteLength;
}

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === "https:";
  } catch {
    return false;
  }
}
