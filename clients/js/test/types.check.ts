// Compiled (not run) by `npm test`: the public types accept what the
// protocol accepts and refuse what the server would refuse.

import { TickcastClient, type Filter, type TickcastEvent } from "../dist/tickcast.js";

const client = new TickcastClient({ url: "http://127.0.0.1:8080", getToken: async () => "jwt", transport: "auto" });

const filter: Filter = {
  event_types: ["pattern_detected", "a_custom_type"],
  tiers: ["daily", "combo"],
  symbols: ["AAPL"],
  patterns: ["BreakoutBO"],
  market_regimes: ["bull"],
  min_confidence: 0.8,
  min_priority: "high",
};

interface Progress {
  progress: number;
}

const handle = client.subscribe<Progress>("s1", filter, {
  onEvent(event: TickcastEvent<Progress>) {
    const offset: string = event.offset;
    const progress: number = event.data.progress;
    void [offset, progress];
  },
  onDropped: ({ count, since }) => void [count satisfies number, since satisfies string],
  onHistoryGone: () => {},
  onError: (error) => void (error.code satisfies string),
});
const resume: string | null = handle.resumeOffset;
void resume;
client.on("state", (state) => void (state satisfies "idle" | "connecting" | "open" | "reconnecting" | "closed"));

// @ts-expect-error: the server refuses unknown filter fields (a typo)
const typo: Filter = { symbol: ["AAPL"] };
// @ts-expect-error: not a tier
const tier: Filter = { tiers: ["weekly"] };
// @ts-expect-error: not a priority
const priority: Filter = { min_priority: "urgent" };
// @ts-expect-error: offsets are strings, never numbers
const offsetNumber: number = handle.resumeOffset;
void [typo, tier, priority, offsetNumber];
