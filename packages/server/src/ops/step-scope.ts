/** Which session and turn the code running now works for: set around each loop step, read by the model wrapper. */
import { AsyncLocalStorage } from "node:async_hooks";

export interface StepScope {
  readonly sessionId: string;
  readonly turn: number;
}

export const stepScope = new AsyncLocalStorage<StepScope>();
