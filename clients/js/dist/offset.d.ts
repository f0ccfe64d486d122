import type { Offset } from "./types.js";
/**
 * Orders two offsets: negative when `a` comes first, 0 when equal, positive
 * after. Offsets of an unknown shape compare as strings.
 */
export declare function compareOffsets(a: Offset, b: Offset): number;
/** The later of two offsets; `null` counts as before everything. */
export declare function laterOffset(a: Offset | null, b: Offset | null): Offset | null;
