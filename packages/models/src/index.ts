export * from "./ai-sdk/index.js";
export * from "./fake-llm/index.js";
