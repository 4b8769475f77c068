/**
 * Session budgets (the API's `budget`): a session's tracked list cost, the rules for setting a budget at
 * create and changing it on update (as the SDK's SessionCreateParams and SessionUpdateParams document
 * them), and the check the loop makes before each model request. A session runs one model for its
 * life, so its list cost is that model's list price times its token totals (kept by every append).
 */
import {
  amountNanos,
  type BudgetLimit,
  InputError,
  listCostNanos,
  modelListPrice,
  type SessionRecord,
  type SessionStore,
  toMonetaryAmount,
} from "@outrig/core";

/** The session's list cost in nano-dollars, or null when its model has no list price. */
export function sessionListCostNanos(record: SessionRecord): bigint | null {
  const price = modelListPrice(record.model);
  if (!price) return null;
  return listCostNanos(price, record.usage ?? { inputTokens: 0, outputTokens: 0 });
}

/** True when the session has a budget and its list cost reached it (or its model cannot be priced). */
export function isBudgetSpent(record: SessionRecord): boolean {
  const budget = record.managed?.budget;
  if (!budget) return false;
  const cost = sessionListCostNanos(record);
  return cost === null || cost >= amountNanos(budget.max_list_cost);
}

/** The loop's check, on the session as stored now (the budget may have been raised or removed). */
export async function readBudgetSpent(
  store: SessionStore,
  orgId: string,
  sessionId: string,
): Promise<boolean> {
  const record = await store.getSession(orgId, sessionId);
  return record ? isBudgetSpent(record) : false;
}

/** Refuses a budget for a session whose model has no public list price (400 `model_not_budgetable`). */
export function assertBudgetable(modelSpec: string): void {
  if (modelListPrice(modelSpec)) return;
  throw new InputError(
    "model_not_budgetable",
    `budget: the model ${modelSpec} has no public list price on this server, so a budget cannot measure it; omit the budget or use a priced Claude model`,
    400,
  );
}

/**
 * The budget an update leaves (`null`: removed), by the API's rules: a session created without a budget
 * (or whose budget was removed) cannot get one (400 `budget_create_only`); a new `max_list_cost` must be
 * above the cost already spent (400 `budget_not_raised`).
 */
export function updatedBudget(record: SessionRecord, budget: BudgetLimit | null): BudgetLimit | null {
  if (budget === null) return null;
  if (!record.managed?.budget)
    throw new InputError(
      "budget_create_only",
      "budget: this session was created without a budget (or its budget was removed); a budget can only be set when a session is created",
      400,
    );
  assertBudgetable(record.model);
  // Held against the cost as the session shows it (whole cents, rounded up): a budget equal to the
  // shown usage.list_cost is not a raise.
  const spent = toMonetaryAmount(sessionListCostNanos(record) ?? 0n);
  if (BigInt(budget.max_list_cost.amount) <= BigInt(spent.amount))
    throw new InputError(
      "budget_not_raised",
      "budget: max_list_cost must be above the list cost this session has already spent (usage.list_cost)",
      400,
    );
  return budget;
}
