// The client's pure parts: offsets, backoff, token expiry.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff } from "../dist/backoff.js";
import { compareOffsets, laterOffset } from "../dist/offset.js";
import { refreshAt, tokenExpiryMs } from "../dist/token.js";
import { hs256 } from "./helpers.mjs";

test("offsets compare numerically beyond 2^53", () => {
  // Same epoch, sequences that differ only past double precision.
  assert.ok(compareOffsets("1732460000123048213-9007199254740993", "1732460000123048213-9007199254740992") > 0);
  // Epochs of 19 digits that a double would make equal.
  assert.ok(compareOffsets("1732460000123048213-1", "1732460000123048214-1") < 0);
  assert.ok(compareOffsets("9-10", "10-1") < 0, "not as strings");
  assert.equal(compareOffsets("1732460000123-41", "1732460000123-41"), 0);
  assert.equal(laterOffset(null, "1-2"), "1-2");
  assert.equal(laterOffset("1-3", "1-2"), "1-3");
});

test("backoff draws full jitter below a doubling bound, capped", () => {
  const draws = [];
  const backoff = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.999999);
  for (let i = 0; i < 6; i++) draws.push(backoff.next());
  assert.deepEqual(draws, [99, 199, 399, 799, 999, 999]);
  backoff.reset();
  assert.equal(backoff.next(), 99);
  assert.equal(new Backoff({}, () => 0).next(), 0);
});

test("a token's exp is read without verifying it; refresh comes before it", () => {
  const token = hs256("any", { sub: "u1", exp: 2_000_000_000, name: "Zoë" });
  assert.equal(tokenExpiryMs(token), 2_000_000_000_000);
  assert.equal(tokenExpiryMs("not a token"), null);
  assert.equal(tokenExpiryMs(hs256("any", { sub: "u1" })), null);
  const now = 1_000_000;
  // Long-lived: a minute ahead.
  assert.equal(refreshAt(now + 3_600_000, now, 60_000), now + 3_540_000);
  // Short-lived: three quarters into its life.
  assert.equal(refreshAt(now + 8_000, now, 60_000), now + 6_000);
  // Already expired: soon, not in a loop.
  assert.equal(refreshAt(now - 5_000, now, 60_000), now + 1_000);
});

test("a subscription hands each offset on once, whatever the server repeats", async () => {
  const { Subscription } = await import("../dist/subscription.js");
  const got = [];
  const sub = new Subscription("s1", "s1", {}, { onEvent: (event) => got.push(event.offset) });
  const event = (offset) => ({ offset, subs: ["s1"], priority: "high", event_type: "pattern_detected", data: {} });
  sub.restart("7-10");
  // At or before the resume point: already had.
  assert.equal(sub.deliver(event("7-10")), false);
  // Above it, received out of a rate-limit hold, then sent again by a
  // replay from a resume that lagged them (protocol.md, "since and resume").
  for (const offset of ["7-12", "7-11", "7-13"]) assert.equal(sub.deliver(event(offset)), true);
  sub.advance("7-11");
  for (const offset of ["7-11", "7-12", "7-13"]) assert.equal(sub.deliver(event(offset)), false);
  assert.equal(sub.deliver(event("7-14")), true);
  // A restart of the server: a later epoch passes.
  assert.equal(sub.deliver(event("8-1")), true);
  assert.deepEqual(got, ["7-12", "7-11", "7-13", "7-14", "8-1"]);
  assert.equal(sub.since, "7-11");
});
