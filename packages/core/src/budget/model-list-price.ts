/**
 * A session's tracked list cost and its budget (the API's `budget: {type: "limit", max_list_cost}`):
 * Anthropic's public list prices per model, the cost of a session's token totals at those prices, and
 * the money amounts the API shows (minor units as an integer string, `USD` only). Costs are kept in
 * nano-dollars (1e-9 USD) so every price here is a whole number per token and nothing is rounded
 * until it is shown. Pure.
 */

/** The API's `BetaMonetaryAmount`: minor units (cents) as an integer string without leading zeros. */
export interface MonetaryAmount {
  readonly amount: string;
  readonly currency: "USD";
}

/** The API's `BetaManagedAgentsBudgetLimit`. */
export interface BudgetLimit {
  readonly type: "limit";
  readonly max_list_cost: MonetaryAmount;
}

/** List price of one token, in nano-dollars (USD per million tokens × 1000). */
export interface ModelListPrice {
  readonly inputNanosPerToken: number;
  readonly outputNanosPerToken: number;
}

/** Nano-dollars in one cent (the API's minor unit of USD). */
export const NANOS_PER_CENT = 10_000_000n;

/**
 * Anthropic's public list prices (USD per million input / output tokens) of the Claude models this
 * server knows, by model id without its date suffix. A model not listed has no price: a session that
 * can run it cannot have a budget (`model_not_budgetable`).
 */
const LIST_PRICES_PER_MILLION: Readonly<Record<string, readonly [input: number, output: number]>> = {
  "claude-opus-4-6": [5, 25],
  "claude-opus-4-5": [5, 25],
  "claude-opus-4-1": [15, 75],
  "claude-opus-4-0": [15, 75],
  "claude-opus-4": [15, 75],
  "claude-sonnet-4-6": [3, 15],
  "claude-sonnet-4-5": [3, 15],
  "claude-sonnet-4-0": [3, 15],
  "claude-sonnet-4": [3, 15],
  "claude-3-7-sonnet": [3, 15],
  "claude-haiku-4-5": [1, 5],
  "claude-3-5-haiku": [0.8, 4],
  "claude-3-haiku": [0.25, 1.25],
};

/**
 * The list price of a model spec (`anthropic:claude-sonnet-4-5-20250929`, `claude-haiku-4-5`), or null
 * when it has none (another provider, or a Claude model missing from the table).
 */
export function modelListPrice(modelSpec: string): ModelListPrice | null {
  const colon = modelSpec.indexOf(":");
  if (colon >= 0 && modelSpec.slice(0, colon) !== "anthropic") return null;
  const id = (colon >= 0 ? modelSpec.slice(colon + 1) : modelSpec).replace(/-(\d{8}|latest)$/, "");
  const price = LIST_PRICES_PER_MILLION[id];
  if (!price) return null;
  return { inputNanosPerToken: price[0] * 1000, outputNanosPerToken: price[1] * 1000 };
}

/** The list cost, in nano-dollars, of token totals at `price`. */
export function listCostNanos(
  price: ModelListPrice,
  usage: { readonly inputTokens: number; readonly outputTokens: number },
): bigint {
  return (
    BigInt(usage.inputTokens) * BigInt(price.inputNanosPerToken) +
    BigInt(usage.outputTokens) * BigInt(price.outputNanosPerToken)
  );
}

/** A cost as the API shows it: whole cents, rounded up (a shown cost never understates what was spent). */
export function toMonetaryAmount(nanos: bigint): MonetaryAmount {
  const cents = (nanos + NANOS_PER_CENT - 1n) / NANOS_PER_CENT;
  return { amount: cents.toString(), currency: "USD" };
}

/** An amount in nano-dollars. */
export function amountNanos(amount: MonetaryAmount): bigint {
  return BigInt(amount.amount) * NANOS_PER_CENT;
}
