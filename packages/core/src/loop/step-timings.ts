/**
 * Where a loop step's time goes, by phase (model call, appends, tool run, sandbox exec, snapshot,
 * checkpoint between steps, …), so the bench can print a per-round breakdown and each change shows
 * where it moved time. Off unless a process turns it on: a phase then costs one boolean check.
 * Phases may nest (a snapshot inside a tool run); each is reported on its own.
 */

export interface PhaseTotal {
  /** Wall-clock milliseconds spent in the phase, summed. */
  readonly totalMs: number;
  readonly count: number;
}

export class StepTimings {
  #isEnabled = false;
  #totals = new Map<string, { totalMs: number; count: number }>();

  get isEnabled(): boolean {
    return this.#isEnabled;
  }

  enable(): void {
    this.#isEnabled = true;
  }

  /** Adds `ms` to `phase` (a phase measured elsewhere, e.g. the gap between two steps). */
  add(phase: string, ms: number): void {
    if (!this.#isEnabled) return;
    const total = this.#totals.get(phase);
    if (total) {
      total.totalMs += ms;
      total.count += 1;
    } else this.#totals.set(phase, { totalMs: ms, count: 1 });
  }

  /** Runs `work` and adds its wall-clock time to `phase` (failures included). */
  async time<T>(phase: string, work: () => Promise<T>): Promise<T> {
    if (!this.#isEnabled) return work();
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.add(phase, performance.now() - started);
    }
  }

  /** The totals so far, and starts over (the bench reads one window at a time). */
  takeTotals(): Record<string, PhaseTotal> {
    const totals = Object.fromEntries(this.#totals);
    this.#totals = new Map();
    return totals;
  }
}

/** The process's step timings (one per process: the loop, the sandbox and the server add to it). */
export const stepTimings = new StepTimings();
