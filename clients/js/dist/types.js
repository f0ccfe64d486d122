// The protocol's shapes (docs/protocol.md), typed. Offsets are strings
// everywhere: a node offset's epoch has 19 digits, beyond 2^53, so a
// number would round it.
export {};
