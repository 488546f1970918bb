/**
 * Watches the ARM emulator for the moment a rule is in place (in every NSG of a path, its operation finished)
 * and the moment it is gone. One timer samples each NSG someone waits on once per tick, so the cost grows
 * with the NSGs being watched, not with the watchers. Resolution: the tick (default 10 ms) plus event-loop lag.
 */
import type { ArmEmulator } from '../../dev/arm/emulator';

interface Watch {
  nsgIds: string[];
  ruleName: string;
  until: 'present' | 'gone';
  /** When the rule was first seen gone from some NSG of the path (the port is closed from then on). */
  firstGoneAt?: number;
  resolve: (at: { first: number; all: number }) => void;
}

export class RuleWatch {
  private readonly watches = new Set<Watch>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly arm: ArmEmulator,
    private readonly tickInMs = 10,
  ) {}

  /** Resolves when every NSG holds the rule with its operation finished (`Succeeded`): the port is open. */
  async present(nsgIds: string[], ruleName: string): Promise<number> {
    return (await this.add(nsgIds, ruleName, 'present')).all;
  }

  /** Resolves when the rule is gone: `first` from one NSG of the path (port closed), `all` from every one. */
  gone(nsgIds: string[], ruleName: string): Promise<{ first: number; all: number }> {
    return this.add(nsgIds, ruleName, 'gone');
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private add(nsgIds: string[], ruleName: string, until: Watch['until']) {
    return new Promise<{ first: number; all: number }>((resolve) => {
      this.watches.add({ nsgIds, ruleName: ruleName.toLowerCase(), until, resolve });
      this.timer ??= setInterval(() => this.tick(), this.tickInMs);
    });
  }

  private tick(): void {
    const now = Date.now();
    const states = new Map<string, Map<string, string>>();
    const rulesOf = (nsgId: string) => {
      let m = states.get(nsgId);
      if (!m) {
        m = new Map(
          (this.arm.getNsg(nsgId)?.securityRules ?? []).map((r) => [
            r.name.toLowerCase(),
            r.properties.provisioningState,
          ]),
        );
        states.set(nsgId, m);
      }
      return m;
    };
    for (const w of this.watches) {
      const states = w.nsgIds.map((n) => rulesOf(n).get(w.ruleName));
      if (w.until === 'present') {
        if (states.every((s) => s === 'Succeeded')) {
          this.watches.delete(w);
          w.resolve({ first: now, all: now });
        }
      } else {
        if (w.firstGoneAt === undefined && states.some((s) => s === undefined)) w.firstGoneAt = now;
        if (states.every((s) => s === undefined)) {
          this.watches.delete(w);
          w.resolve({ first: w.firstGoneAt ?? now, all: now });
        }
      }
    }
    if (this.watches.size === 0) this.stop();
  }
}
