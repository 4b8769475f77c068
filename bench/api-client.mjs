/** The benches' client of a bench server: the official SDK, one agent and cloud environment, whole turns. */
import Anthropic from "@anthropic-ai/sdk";

/**
 * Tool names the fake LLM calls. The server runs the agent toolset by the names its loop registers;
 * until the toolset's own names (`bash`, `write`, `read`) replace the older ones, the benches use these.
 */
export const TOOLS = { bash: "bash", write: "write", read: "read", edit: "edit" };

/** An SDK client plus a default agent (the agent toolset) and cloud environment on `server`. */
export async function benchClient(server, { model = "anthropic:bench" } = {}) {
  const client = new Anthropic({ apiKey: server.apiKey, baseURL: server.url, maxRetries: 0 });
  const agent = await client.beta.agents.create({
    name: "bench",
    model,
    tools: [{ type: "agent_toolset_20260401" }],
  });
  const environment = await client.beta.environments.create({ name: "bench", config: { type: "cloud" } });
  return {
    client,
    /** A new session that starts on `text` (initial_events), not waited for. */
    startSession: (text) =>
      client.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        initial_events: [{ type: "user.message", content: [{ type: "text", text }] }],
      }),
    /** A new session, streamed, sent `text`; resolves when the stream shows it idle again. */
    async runSession(text) {
      const session = await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
      const stream = await client.beta.sessions.events.stream(session.id);
      await client.beta.sessions.events.send(session.id, {
        events: [{ type: "user.message", content: [{ type: "text", text }] }],
      });
      for await (const event of stream) {
        if (event.type === "session.status_idle" || event.type === "session.status_terminated") break;
      }
      return session;
    },
  };
}
