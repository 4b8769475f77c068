/**
 * `node bench/large-tool-input-bench.mjs [--kb 680] [--rounds 3] [--provider anthropic|openai-chat|openai]`:
 * how long one model call that streams a large tool input (a Write of `--kb` KiB) takes in
 * AiSdkLanguageModel, against reading the same SSE stream with plain fetch. The fake LLM runs in a child
 * process so the two do not share an event loop. Not part of `npm run bench` (no README figure yet).
 */
import { fork } from "node:child_process";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    kb: { type: "string", default: "680" },
    rounds: { type: "string", default: "3" },
    provider: { type: "string", default: "anthropic" },
    serve: { type: "boolean", default: false },
  },
});
const { createModelFactory, startFakeLlmServer } = await import("../packages/models/dist/index.js");

if (values.serve) {
  const content = `${"x".repeat(Number(values.kb) * 1024 - 40)}\n`;
  const turn = { toolCalls: [{ name: "write", input: { file_path: "/workspace/big.txt", content } }] };
  const fake = await startFakeLlmServer({ script: { turns: Array.from({ length: 100 }, () => turn) } });
  process.send?.(fake.url);
} else {
  const child = fork(new URL(import.meta.url), ["--serve", "--kb", values.kb], { stdio: "inherit" });
  const url = await new Promise((resolve) => child.once("message", resolve));
  const wire = {
    anthropic: ["/v1/messages", { max_tokens: 10, messages: [{ role: "user", content: "go" }] }],
    "openai-chat": ["/v1/chat/completions", { messages: [{ role: "user", content: "go" }] }],
    openai: ["/v1/responses", { input: "go" }],
  }[values.provider];
  const factory = createModelFactory({
    anthropic: { apiKey: "bench", baseURL: `${url}/v1` },
    openai: { apiKey: "bench", baseURL: `${url}/v1` },
  });
  const request = {
    system: "",
    messages: [{ role: "user", content: [{ type: "text", text: "go" }] }],
    tools: [{ name: "write", description: "Writes a file", inputSchema: { type: "object" } }],
    maxOutputTokens: 10,
  };
  for (let round = 1; round <= Number(values.rounds); round++) {
    let started = performance.now();
    const response = await fetch(`${url}${wire[0]}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "bench", stream: true, ...wire[1] }),
    });
    let bytes = 0;
    for await (const chunk of response.body) bytes += chunk.byteLength;
    const streamMs = performance.now() - started;
    started = performance.now();
    let inputBytes = 0;
    for await (const event of factory(`${values.provider}:bench`).stream(
      request,
      new AbortController().signal,
    )) {
      if (event.type === "error") throw new Error(event.message);
      if (event.type === "end") inputBytes = JSON.stringify(event.message.content[0]?.input ?? {}).length;
    }
    const modelMs = performance.now() - started;
    console.log(
      `${values.provider} round ${round}: SSE stream ${bytes} B read in ${streamMs.toFixed(0)} ms; model call ` +
        `with a ${inputBytes} B tool input ${modelMs.toFixed(0)} ms (${(modelMs / streamMs).toFixed(1)}x)`,
    );
  }
  child.kill();
}
