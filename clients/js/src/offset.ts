// Comparing offsets. Both kinds read `<a>-<b>` with decimal parts: node
// offsets `<epoch>-<seq>` (a later run has a larger epoch) and Redis stream
// ids `<ms>-<seq>`. The parts exceed 2^53, hence BigInt.

import type { Offset } from "./types.js";

function parts(offset: Offset): [bigint, bigint] | null {
  const match = /^(\d{1,30})-(\d{1,30})$/.exec(offset);
  if (!match || match[1] === undefined || match[2] === undefined) return null;
  return [BigInt(match[1]), BigInt(match[2])];
}

/**
 * Orders two offsets: negative when `a` comes first, 0 when equal, positive
 * after. Offsets of an unknown shape compare as strings.
 */
export function compareOffsets(a: Offset, b: Offset): number {
  const pa = parts(a);
  const pb = parts(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  if (pa[0] !== pb[0]) return pa[0] < pb[0] ? -1 : 1;
  if (pa[1] !== pb[1]) return pa[1] < pb[1] ? -1 : 1;
  return 0;
}

/** The later of two offsets; `null` counts as before everything. */
export function laterOffset(a: Offset | null, b: Offset | null): Offset | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareOffsets(a, b) >= 0 ? a : b;
}
