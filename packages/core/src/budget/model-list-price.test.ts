import { describe, expect, it } from "vitest";
import { amountNanos, listCostNanos, modelListPrice, toMonetaryAmount } from "./model-list-price.js";

describe("model list prices", () => {
  it("prices Claude models by id, with or without the provider and a date suffix", () => {
    const sonnet = { inputNanosPerToken: 3000, outputNanosPerToken: 15000 };
    expect(modelListPrice("claude-sonnet-4-5")).toEqual(sonnet);
    expect(modelListPrice("anthropic:claude-sonnet-4-5-20250929")).toEqual(sonnet);
    expect(modelListPrice("claude-3-haiku-20240307")).toEqual({
      inputNanosPerToken: 250,
      outputNanosPerToken: 1250,
    });
    expect(modelListPrice("anthropic:claude-opus-4-1")).toEqual({
      inputNanosPerToken: 15000,
      outputNanosPerToken: 75000,
    });
  });

  it("has no price for other providers or Claude models it does not list", () => {
    expect(modelListPrice("openai:gpt-5")).toBeNull();
    expect(modelListPrice("openai-compatible:claude-sonnet-4-5")).toBeNull();
    expect(modelListPrice("claude-opus-4-8")).toBeNull();
    expect(modelListPrice("claude-sonnet-4-5-extra")).toBeNull();
  });

  it("costs whole tokens exactly and shows whole cents rounded up", () => {
    const price = modelListPrice("claude-haiku-4-5");
    if (!price) throw new Error("claude-haiku-4-5 is priced");
    // 1M input tokens at $1 plus 200k output tokens at $5: $2.00 exactly.
    const cost = listCostNanos(price, { inputTokens: 1_000_000, outputTokens: 200_000 });
    expect(cost).toBe(2_000_000_000n);
    expect(toMonetaryAmount(cost)).toEqual({ amount: "200", currency: "USD" });
    expect(toMonetaryAmount(cost + 1n)).toEqual({ amount: "201", currency: "USD" });
    expect(toMonetaryAmount(0n)).toEqual({ amount: "0", currency: "USD" });
    // No float rounding at sizes far beyond 2^53 nano-dollars.
    const huge = listCostNanos(price, { inputTokens: Number.MAX_SAFE_INTEGER, outputTokens: 0 });
    expect(huge).toBe(BigInt(Number.MAX_SAFE_INTEGER) * 1000n);
    expect(amountNanos({ amount: "2500", currency: "USD" })).toBe(25_000_000_000n);
  });
});
