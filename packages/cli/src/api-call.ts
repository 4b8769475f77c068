/** One authenticated JSON call to the Outrig API; throws `code: message` from the server's error body. */
export interface ApiSettings {
  readonly server: string;
  readonly apiKey: string;
}

export async function apiCall(
  settings: ApiSettings,
  method: string,
  route: string,
  body?: unknown,
): Promise<Response> {
  const response = await fetch(`${settings.server}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${settings.apiKey}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) {
    const error = (await response.json().catch(() => ({}))) as {
      error?: { code?: string; message?: string };
    };
    throw new Error(`${error.error?.code ?? response.status}: ${error.error?.message ?? "request failed"}`);
  }
  return response;
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}
