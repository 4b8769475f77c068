/** A minimal SSE reader over fetch, with Last-Event-ID reconnects. */

export interface SseMessage {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/** Parses an SSE byte stream into messages. Comments and retry fields are ignored. */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = "";
  let id: string | undefined;
  let event = "message";
  let data: string[] = [];
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
      if (line === "") {
        if (data.length > 0) yield { id, event, data: data.join("\n") };
        id = undefined;
        event = "message";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
  }
}

export interface FollowOptions {
  readonly url: string;
  readonly headers: Record<string, string>;
  /** Resume after this seq. */
  readonly afterSeq: number;
  /** Return true to stop following. */
  readonly onMessage: (message: SseMessage) => boolean | Promise<boolean>;
  readonly maxReconnects?: number;
  readonly onReconnect?: (attempt: number, error: unknown) => void;
  readonly signal?: AbortSignal;
}

/** Follows an event stream, reconnecting with Last-Event-ID when the connection drops. */
export async function followSse(options: FollowOptions): Promise<void> {
  let lastId = options.afterSeq;
  let failures = 0;
  for (;;) {
    try {
      const response = await fetch(options.url, {
        headers: { ...options.headers, accept: "text/event-stream", "last-event-id": String(lastId) },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (!response.ok || !response.body) {
        const text = await response.text().catch(() => "");
        const error = new Error(`event stream failed: HTTP ${response.status} ${text}`);
        if (response.status >= 400 && response.status < 500) throw Object.assign(error, { isFatal: true });
        throw error;
      }
      for await (const message of parseSse(response.body)) {
        failures = 0;
        if (message.id !== undefined) lastId = Number(message.id);
        if (await options.onMessage(message)) return;
      }
      throw new Error("event stream closed");
    } catch (error) {
      if ((error as { isFatal?: boolean }).isFatal || options.signal?.aborted) throw error;
      failures += 1;
      if (failures > (options.maxReconnects ?? 60)) throw error;
      options.onReconnect?.(failures, error);
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** Math.min(failures, 5))));
    }
  }
}
